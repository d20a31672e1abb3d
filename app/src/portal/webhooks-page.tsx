import { Page } from '../components/page';

export function WebhooksPage() {
  return <Page title="Webhooks">{null}</Page>;
}
