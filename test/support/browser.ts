import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (apt-get install chromium); a browser is never downloaded. */
export const CHROMIUM = process.env.TOLLGATE_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Whether the browser tests can run here. Without Chromium they are skipped with a warning, except
 * in CI (CI=true), where they are required and a missing browser fails the run.
 */
export function chromiumPresent(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`CI=true: the browser tests are required and there is no Chromium at ${CHROMIUM} (apt-get install chromium).`);
  console.warn(`Browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium; they are required in CI).`);
  return false;
}

export const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

export const VIEWPORTS = { desktop: { width: 1280, height: 900 }, phone: { width: 375, height: 800 } } as const;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A fresh browser profile (its own cookie jar: one signed-in person) that may use the clipboard,
 * and that fails the test on a page error or a console error (a CSP violation is one).
 */
export async function newPerson(browser: Browser, baseURL: string): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  // One locale and time zone, so the amounts and dates the test reads are the same on every machine.
  const context = await browser.newContext({ baseURL, viewport: VIEWPORTS.desktop, acceptDownloads: true, locale: 'en-US', timezoneId: 'UTC' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused API call is logged by the browser too; the app shows those, the test checks them.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console error: ${message.text()}`);
  });
  page.on('response', (response) => {
    const kind = response.request().resourceType();
    if (response.status() >= 500 || (response.status() >= 400 && ['document', 'script', 'stylesheet', 'image', 'font'].includes(kind))) {
      problems.push(`${response.status()} for ${kind} ${response.url()}`);
    }
  });
  return { context, page, problems };
}

/**
 * A full-page screenshot of the current page at desktop and phone width, as test artifacts.
 * Returns the widths at which the page is wider than the viewport (it should scroll only down).
 */
export async function screenshotBothWidths(page: Page, name: string): Promise<string[]> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const overflowing: string[] = [];
  for (const [width, viewport] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(viewport);
    // Let the chart's ResizeObserver redraw at the new width.
    await page.waitForTimeout(300);
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    if (scrollWidth > viewport.width) overflowing.push(`${name} at ${width}: ${scrollWidth} px wide`);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(VIEWPORTS.desktop);
  return overflowing;
}

/** Form controls without an accessible name (no label, aria-label or text): each is a problem. */
export function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('input, select, textarea, button, a[href]')]
      .filter((el) => {
        const labelled = 'labels' in el && (el as HTMLInputElement).labels !== null && (el as HTMLInputElement).labels!.length > 0;
        return !labelled && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby') && !el.textContent?.trim();
      })
      .map((el) => `${location.pathname}: <${el.tagName.toLowerCase()}> ${el.outerHTML.slice(0, 120)}`),
  );
}
