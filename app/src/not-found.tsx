import { Link } from 'react-router';
import { Page } from './components/page';

export function NotFound() {
  return (
    <main id="main" className="centered">
      <Page title="Page not found">
        <p>
          There is no page here. <Link to="/">Go to the start</Link>.
        </p>
      </Page>
    </main>
  );
}
