import { formatMoney } from '../format';

/** An amount from the API (decimal string) in its currency; negative amounts are marked for styling. */
export function Money({ amount, currency }: { amount: string; currency: string }) {
  return <span className={amount.startsWith('-') ? 'money negative' : 'money'}>{formatMoney(amount, currency)}</span>;
}
