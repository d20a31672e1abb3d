import { useMemo } from 'react';
import { Link } from 'react-router';
import { BalanceFigures } from '../components/balance-stats';
import { Page, Panel, Stat } from '../components/page';
import { QueryView } from '../components/states';
import { UsageChart } from '../components/usage-chart';
import { formatDays, formatMoney } from '../format';
import { useBalance, useUsage } from './portal-queries';
import { TransactionsTable } from './transactions-table';
import { burnRatePerDay, dayStarts, lastDays, lastHours, runwayDays, stackByDay } from './usage-math';

const BURN_DAYS = 7;
const CHART_DAYS = 30;

/** Balance, spend rate and runway, 30 days of usage by model, and the latest ledger entries. */
export function OverviewPage() {
  // The ranges are fixed when the page opens; a reload moves them on.
  const ranges = useMemo(() => ({ burn: lastHours(BURN_DAYS, new Date()), chart: lastDays(CHART_DAYS, new Date()) }), []);
  const balance = useBalance();
  const burn = useUsage({ ...ranges.burn, window: 'day' });
  const chart = useUsage({ ...ranges.chart, window: 'day', group_by: 'product' });
  const days = useMemo(() => dayStarts(ranges.chart.from, ranges.chart.to), [ranges]);
  return (
    <Page title="Overview">
      <QueryView query={balance}>
        {(b) => {
          const burnPerDay = burn.data ? burnRatePerDay(burn.data.data, BURN_DAYS) : null;
          const runway = burnPerDay === null ? undefined : runwayDays(b.available, burnPerDay);
          // While the usage loads: an ellipsis; if it failed: a dash (the chart below shows the error).
          const pending = burn.isError ? '—' : '…';
          return (
            <dl className="stats" aria-label="Balance">
              <BalanceFigures balance={b} />
              <Stat label="Burn rate (7 days)" value={burnPerDay === null ? pending : `${formatMoney(burnPerDay, b.currency)} / day`} />
              <Stat label="Projected runway" value={runway === undefined ? pending : runway === null ? 'No recent spend' : formatDays(runway)} />
            </dl>
          );
        }}
      </QueryView>
      <Panel title="Usage, last 30 days" actions={<Link to="/portal/usage">Details</Link>}>
        <QueryView query={chart} isEmpty={(u) => u.data.length === 0} empty="No usage in the last 30 days.">
          {(u) => <UsageChart series={stackByDay(u.data, days, (row) => row.product ?? 'other')} currency={u.data[0].currency} label="Charges per day for the last 30 days, stacked by model" />}
        </QueryView>
      </Panel>
      <Panel title="Recent transactions">
        <TransactionsTable limit={10} />
      </Panel>
    </Page>
  );
}
