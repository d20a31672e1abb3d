import { Type, type Static } from 'typebox';
import { Money } from '../platform/schemas.js';

const Threshold = Type.Union([Money, Type.Null()]);

export const AlertSettings = Type.Object({
  customer_id: Type.String(),
  currency: Type.String(),
  balance_low: Type.Union([Money, Type.Null()], { description: 'balance.low fires when available goes below this' }),
  spend_day: Type.Union([Money, Type.Null()], { description: 'spend_limit.reached fires when spend in a UTC day reaches this' }),
  spend_month: Type.Union([Money, Type.Null()], { description: 'spend_limit.reached fires when spend in a UTC month reaches this' }),
});
export type AlertSettings = Static<typeof AlertSettings>;

export const AlertSettingsPut = Type.Object(
  { balance_low: Type.Optional(Threshold), spend_day: Type.Optional(Threshold), spend_month: Type.Optional(Threshold) },
  { additionalProperties: false, description: 'Omitted or null: that alert is off. balance.depleted is always on.' },
);
export type AlertSettingsPut = Static<typeof AlertSettingsPut>;
