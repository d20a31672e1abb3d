import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatDay, formatMoney } from '../format';
import type { StackedSeries } from '../portal/usage-math';

const COLORS = ['#2b59c3', '#e07a1f', '#2e9e6a', '#b83280', '#7a5af8', '#c4a000', '#0e9aa7', '#d92d20', '#667085', '#8a6d3b'];

/**
 * Charges per day (or per `tickLabel`'s window) as stacked bars, one colour per series (model, meter or key). The figure is
 * labelled for screen readers; the exact numbers are in the tables beside it.
 */
export function UsageChart({ series, currency, label, tickLabel = formatDay }: { series: StackedSeries; currency: string; label: string; tickLabel?: (iso: string) => string }) {
  const money = (value: unknown) => formatMoney(String(value), currency);
  return (
    <figure className="chart" role="img" aria-label={label}>
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={series.points} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="day" tickFormatter={(day: string) => tickLabel(day)} minTickGap={16} fontSize={12} />
          <YAxis tickFormatter={money} width={72} fontSize={12} />
          <Tooltip labelFormatter={(day) => tickLabel(String(day))} formatter={(value) => money(value)} />
          <Legend />
          {series.keys.map((key, i) => (
            <Bar key={key} dataKey={key} name={key} stackId="charges" fill={COLORS[i % COLORS.length]} isAnimationActive={false} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}
