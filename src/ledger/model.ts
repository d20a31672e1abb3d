/** Ledger entities as the rules see them. Amounts are integers at LEDGER_SCALE (see money.ts). */

/**
 * The operator's accounts per currency: `tax` holds tax invoiced (owed to the authorities),
 * `payments` is where money received for invoices comes from.
 */
export type OperatorAccountCode = 'revenue' | 'promotional' | 'purchased' | 'expired' | 'tax' | 'payments';
export const OPERATOR_ACCOUNT_CODES: OperatorAccountCode[] = ['revenue', 'promotional', 'purchased', 'expired', 'tax', 'payments'];

export interface Account {
  id: string;
  currency: string;
  code: 'customer' | OperatorAccountCode;
  customerId: string | null;
  creditLimit: bigint;
  debitsPosted: bigint;
  creditsPosted: bigint;
  debitsPending: bigint;
  creditsPending: bigint;
}

export type GrantCategory = 'purchased' | 'promotional';

export interface Grant {
  id: string;
  customerId: string;
  currency: string;
  category: GrantCategory;
  priority: number;
  amount: bigint;
  remaining: bigint;
  expiresAt: Date | null;
  expiredAt: Date | null;
  description: string | null;
  createdAt: Date;
}

export type ReservationStatus = 'pending' | 'settled' | 'released' | 'expired';

/** A quantity per meter key, as exact decimal strings. */
export type Quantities = Record<string, string>;

export interface Reservation {
  id: string;
  customerId: string;
  apiKeyId: string;
  productId: string;
  currency: string;
  amount: bigint;
  priceIds: string[];
  estimate: Quantities;
  metadata: Record<string, unknown>;
  status: ReservationStatus;
  holdTransferId: string | null;
  expiresAt: Date;
  createdAt: Date;
  resolvedAt: Date | null;
  usage: Quantities | null;
  captured: bigint | null;
  charged: bigint | null;
  released: bigint | null;
  uncollected: bigint | null;
}

export type TransferKind = 'grant' | 'hold' | 'capture' | 'release' | 'charge' | 'expiry' | 'adjustment';

export interface Transfer {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  currency: string;
  kind: TransferKind;
  pending: boolean;
  pendingId: string | null;
  customerId: string;
  reservationId: string | null;
  /** The API key whose request made it: a reservation's hold, capture, release and charge, and usage charges. */
  apiKeyId: string | null;
  grantId: string | null;
  /** The invoice a billing transfer belongs to (adjustment, tax, payment, credit note, void). */
  invoiceId: string | null;
  reason: string | null;
  createdAt: Date;
}

export type SpendPeriod = 'day' | 'month';
export const SPEND_PERIODS: readonly SpendPeriod[] = ['day', 'month'];

/** What the ledger needs to know about an API key at the moment of a batch. */
export interface KeyState {
  apiKeyId: string;
  active: boolean;
  maxConcurrency: number | null;
  spendLimit: { amount: bigint; period: SpendPeriod } | null;
  openCount: number;
  heldAmount: bigint;
  spent: Record<SpendPeriod, bigint>;
}

export function periodStart(period: SpendPeriod, at: Date): Date {
  return period === 'day'
    ? new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()))
    : new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

export function postedBalance(account: Account): bigint {
  return account.creditsPosted - account.debitsPosted;
}

export function heldBalance(account: Account): bigint {
  return account.debitsPending - account.creditsPending;
}

/**
 * available = posted - held + credit_limit. DESIGN.md invariant 2 keeps it >= 0, with one
 * exception: an invoice charge is posted in full and may take it below zero (docs/ledger.md).
 */
export function availableBalance(account: Account): bigint {
  return postedBalance(account) - heldBalance(account) + account.creditLimit;
}
