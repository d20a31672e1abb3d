import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import { DataTable, type Column } from '../components/data-table';
import { Field, FormStatus, SelectField } from '../components/field';
import { Panel } from '../components/page';
import { QueryView } from '../components/states';
import { formatDateTime } from '../format';
import { consoleKeys, useMeters, usePrices, type Price, type PriceCreate } from './console-queries';
import { describeTerms, versionStates } from './price-versions';
import { StatusBadge } from './status-badge';

/** A price amount as the API takes it: up to 12 decimals. */
const PRICE_PATTERN = '\\d{1,15}(\\.\\d{1,12})?';

type Scheme = PriceCreate['scheme'];
interface TierRow {
  up_to: string;
  unit_amount: string;
  flat_amount: string;
}

const historyColumns = (states: Map<string, string>): Column<Price>[] => [
  { header: 'Effective', cell: (p) => formatDateTime(p.effective_at) },
  { header: 'State', cell: (p) => <StatusBadge status={states.get(p.id) ?? ''} good={['in force']} bad={[]} /> },
  { header: 'Meter', cell: (p) => p.meter },
  { header: 'For', cell: (p) => (p.customer_id ? <code>{p.customer_id}</code> : 'everyone') },
  { header: 'Scheme', cell: (p) => p.scheme.replace('_', ' ') },
  { header: 'Terms', cell: (p) => `${p.currency} ${describeTerms(p)}` },
  { header: 'Version', cell: (p) => <code>{p.id}</code> },
];

/** A product's price versions, newest first, and the form that publishes a new one. */
export function PriceEditor({ product }: { product: string }) {
  const prices = usePrices(product);
  return (
    <>
      <Panel title={`Price history of ${product}`}>
        <p className="muted">Prices are never edited: a new version takes effect at its time, and events before it keep the price they had.</p>
        <QueryView query={prices} isEmpty={(page) => page.data.length === 0} empty="No price yet: events of this product are unpriced until one is published.">
          {(page) => <DataTable caption={`Price versions of ${product}`} rows={page.data} columns={historyColumns(versionStates(page.data, new Date()))} rowKey={(p) => p.id} />}
        </QueryView>
      </Panel>
      <NewPriceVersion product={product} latest={prices.data?.data[0]} />
    </>
  );
}

/** The form starts from the latest version's meter and currency (a new version usually replaces it). */
function NewPriceVersion({ product, latest }: { product: string; latest: Price | undefined }) {
  const client = useQueryClient();
  const meters = useMeters();
  const [meter, setMeter] = useState('');
  const [currency, setCurrency] = useState<string | null>(null);
  const [scheme, setScheme] = useState<Scheme>('per_unit');
  const [unitAmount, setUnitAmount] = useState('');
  const [packageSize, setPackageSize] = useState('');
  const [tiers, setTiers] = useState<TierRow[]>([{ up_to: '', unit_amount: '', flat_amount: '' }]);
  const [effective, setEffective] = useState('');
  const [customer, setCustomer] = useState('');
  const publish = useMutation({
    mutationFn: (body: PriceCreate) => unwrap(api.POST('/v1/prices', { body })),
    onSuccess: () => client.invalidateQueries({ queryKey: consoleKeys.prices(product) }),
  });
  const tiered = scheme === 'graduated' || scheme === 'volume';
  const chosenMeter = meter || latest?.meter || (meters.data?.data[0]?.key ?? '');
  const chosenCurrency = currency ?? latest?.currency ?? 'USD';
  const submit = (event: FormEvent) => {
    event.preventDefault();
    publish.mutate({
      product,
      meter: chosenMeter,
      currency: chosenCurrency as PriceCreate['currency'],
      scheme,
      ...(tiered
        ? { tiers: tiers.map((t) => ({ up_to: t.up_to.trim() === '' ? null : t.up_to.trim(), unit_amount: t.unit_amount.trim() || '0', flat_amount: t.flat_amount.trim() || '0' })) }
        : { unit_amount: unitAmount.trim() }),
      ...(scheme === 'package' ? { package_size: packageSize.trim() } : {}),
      // datetime-local is the operator's local time; the API takes UTC. Empty: now.
      ...(effective ? { effective_at: new Date(effective).toISOString() } : {}),
      ...(customer.trim() ? { customer: customer.trim() } : {}),
    });
  };
  const setTier = (i: number, patch: Partial<TierRow>) => setTiers(tiers.map((t, j) => (j === i ? { ...t, ...patch } : t)));
  return (
    <Panel title="Publish a new price version">
      <form className="form" onSubmit={submit} aria-label={`New price version of ${product}`}>
        <div className="form grid">
          <SelectField label="Meter" required value={chosenMeter} onChange={(e) => setMeter(e.target.value)}>
            {meters.data?.data.map((m) => (
              <option key={m.id} value={m.key}>
                {m.name} ({m.key})
              </option>
            ))}
          </SelectField>
          <Field label="Currency" required pattern="[A-Z]{3}" maxLength={3} value={chosenCurrency} onChange={(e) => setCurrency(e.target.value.toUpperCase())} />
          <SelectField label="Scheme" value={scheme} onChange={(e) => setScheme(e.target.value as Scheme)}>
            <option value="per_unit">Per unit</option>
            <option value="package">Package</option>
            <option value="graduated">Graduated tiers</option>
            <option value="volume">Volume tiers</option>
          </SelectField>
          {tiered ? null : (
            <Field label={scheme === 'package' ? 'Price per package' : 'Price per unit'} required inputMode="decimal" pattern={PRICE_PATTERN} placeholder="0.025" value={unitAmount} onChange={(e) => setUnitAmount(e.target.value)} />
          )}
          {scheme === 'package' ? <Field label="Package size (units)" required inputMode="decimal" pattern={PRICE_PATTERN} value={packageSize} onChange={(e) => setPackageSize(e.target.value)} /> : null}
          <Field label="Effective from (optional)" type="datetime-local" value={effective} onChange={(e) => setEffective(e.target.value)} hint="Empty: now" />
          <Field label="Customer override (optional)" placeholder="cus_…" pattern="cus_[0-9a-z]{26}" value={customer} onChange={(e) => setCustomer(e.target.value)} />
        </div>
        {tiered ? (
          <fieldset>
            <legend>Tiers (the last one has no upper bound)</legend>
            {tiers.map((tier, i) => (
              <div className="form grid" key={i}>
                <Field label={`Tier ${i + 1}: up to`} inputMode="decimal" pattern={PRICE_PATTERN} placeholder={i === tiers.length - 1 ? 'no limit' : '1000'} value={tier.up_to} onChange={(e) => setTier(i, { up_to: e.target.value })} />
                <Field label={`Tier ${i + 1}: unit price`} inputMode="decimal" pattern={PRICE_PATTERN} value={tier.unit_amount} onChange={(e) => setTier(i, { unit_amount: e.target.value })} />
                <Field label={`Tier ${i + 1}: flat fee`} inputMode="decimal" pattern={PRICE_PATTERN} value={tier.flat_amount} onChange={(e) => setTier(i, { flat_amount: e.target.value })} />
              </div>
            ))}
            <div className="actions">
              <button type="button" onClick={() => setTiers([...tiers, { up_to: '', unit_amount: '', flat_amount: '' }])}>
                Add a tier
              </button>
              {tiers.length > 1 ? (
                <button type="button" onClick={() => setTiers(tiers.slice(0, -1))}>
                  Remove the last tier
                </button>
              ) : null}
            </div>
          </fieldset>
        ) : null}
        <FormStatus error={publish.error} success={publish.data ? `Published version ${publish.data.id}, effective ${formatDateTime(publish.data.effective_at)}.` : null} />
        <div className="actions">
          <button type="submit" className="primary" disabled={publish.isPending || !meters.data?.data.length}>
            Publish price version
          </button>
        </div>
      </form>
    </Panel>
  );
}
