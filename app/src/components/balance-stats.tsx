import type { UseQueryResult } from '@tanstack/react-query';
import type { paths } from '../api/schema';
import { Money } from './money';
import { Stat } from './page';
import { QueryView } from './states';

type Balance = paths['/v1/me/balance']['get']['responses'][200]['content']['application/json'];

/** Available and held: the two figures every balance view starts with. */
export function BalanceFigures({ balance }: { balance: Balance }) {
  return (
    <>
      <Stat label="Available" value={<Money amount={balance.available} currency={balance.currency} />} />
      <Stat label="Held" value={<Money amount={balance.held} currency={balance.currency} />} hint="reserved by running requests" />
    </>
  );
}

/** A balance query's available and held, with its loading and error states. */
export function BalanceStats({ query }: { query: UseQueryResult<Balance> }) {
  return (
    <QueryView query={query}>
      {(balance) => (
        <dl className="stats" aria-label="Balance">
          <BalanceFigures balance={balance} />
        </dl>
      )}
    </QueryView>
  );
}
