import PDFDocument from 'pdfkit';
import type { Invoice } from './schemas.js';

/**
 * An invoice as a PDF (A4, the standard Helvetica fonts, nothing read from disk): operator,
 * customer, period, one row per line, subtotal, tax, total, credits applied, credit notes,
 * payments and the amount due. The amounts are the invoice's own strings: nothing is recomputed
 * or rounded here.
 */
export interface PdfParty {
  operatorName: string;
  customer: { id: string; name: string; email: string | null };
}

const MARGIN = 50;
const COLUMNS = [
  { title: 'Product', x: MARGIN, width: 150, align: 'left' as const },
  { title: 'Meter', x: 200, width: 95, align: 'left' as const },
  { title: 'Quantity', x: 295, width: 90, align: 'right' as const },
  { title: 'Pricing', x: 395, width: 60, align: 'left' as const },
  { title: 'Amount', x: 455, width: 90, align: 'right' as const },
];

export function renderInvoicePdf(invoice: Invoice, party: PdfParty): Promise<Buffer> {
  const doc = new PDFDocument({ size: 'A4', margin: MARGIN, info: { Title: titleOf(invoice), Author: party.operatorName } });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  header(doc, invoice, party);
  lines(doc, invoice);
  totals(doc, invoice);
  doc.end();
  return done;
}

const titleOf = (invoice: Invoice) => (invoice.number === null ? `Draft invoice ${invoice.id}` : `Invoice ${String(invoice.number).padStart(6, '0')}`);

function header(doc: PDFKit.PDFDocument, invoice: Invoice, party: PdfParty) {
  doc.font('Helvetica-Bold').fontSize(18).text(party.operatorName, MARGIN, MARGIN);
  doc.fontSize(14).text(titleOf(invoice), { align: 'right' });
  doc.moveDown();
  doc.font('Helvetica').fontSize(10);
  const rows: Array<[string, string]> = [
    ['Billed to', `${party.customer.name} (${party.customer.id})${party.customer.email ? `, ${party.customer.email}` : ''}`],
    ['Period', `${invoice.period}: ${invoice.period_start.slice(0, 10)} to ${invoice.period_end.slice(0, 10)} (exclusive), UTC`],
    ['Status', invoice.status],
    ['Issued', invoice.finalized_at ? invoice.finalized_at.slice(0, 10) : 'not yet (draft)'],
    ['Currency', invoice.currency],
  ];
  for (const [label, value] of rows) {
    const y = doc.y;
    doc.font('Helvetica-Bold').text(label, MARGIN, y, { width: 80 });
    doc.font('Helvetica').text(value, MARGIN + 90, y, { width: 400 });
  }
  doc.moveDown(1.5);
}

function row(doc: PDFKit.PDFDocument, cells: string[], font: string) {
  if (doc.y > doc.page.height - MARGIN - 60) doc.addPage();
  const y = doc.y;
  doc.font(font);
  let bottom = y;
  COLUMNS.forEach((c, i) => {
    doc.text(cells[i], c.x, y, { width: c.width, align: c.align });
    bottom = Math.max(bottom, doc.y);
  });
  doc.y = bottom + 4;
}

function lines(doc: PDFKit.PDFDocument, invoice: Invoice) {
  row(doc, COLUMNS.map((c) => c.title), 'Helvetica-Bold');
  doc.moveTo(MARGIN, doc.y).lineTo(545, doc.y).stroke();
  doc.y += 4;
  if (invoice.lines.length === 0) row(doc, ['No usage in this period', '', '', '', ''], 'Helvetica');
  for (const l of invoice.lines) {
    const cells = l.type === 'late_usage' ? [`Late usage, period ${l.late_period}`, '', '', '', l.amount] : [l.product ?? '', l.meter ?? '', l.quantity ?? '', l.scheme ?? 'no price', l.amount];
    row(doc, cells, 'Helvetica');
  }
  doc.moveTo(MARGIN, doc.y).lineTo(545, doc.y).stroke();
  doc.y += 8;
}

const isZero = (amount: string) => /^0(\.0+)?$/.test(amount);
const minus = (amount: string) => (isZero(amount) ? amount : `-${amount}`);

function totals(doc: PDFKit.PDFDocument, invoice: Invoice) {
  const entries: Array<[string, string, string]> = [
    ['Subtotal', invoice.subtotal, 'Helvetica'],
    [`Tax (${invoice.tax_rate} %)`, invoice.tax, 'Helvetica'],
    ['Total', `${invoice.total} ${invoice.currency}`, 'Helvetica-Bold'],
  ];
  // Before finalization no credit is applied yet: a draft shows its total only.
  if (invoice.finalized_at) {
    entries.push(['Credits applied', minus(invoice.credits_applied), 'Helvetica'], ['Amount due', `${invoice.amount_due} ${invoice.currency}`, 'Helvetica-Bold']);
    for (const n of invoice.credit_notes) entries.push([`Credit note ${n.created_at.slice(0, 10)} (${n.reason})`, minus(n.amount), 'Helvetica']);
    if (!isZero(invoice.amount_paid)) entries.push(['Paid', minus(invoice.amount_paid), 'Helvetica']);
    entries.push(['Remaining', `${invoice.amount_remaining} ${invoice.currency}`, 'Helvetica-Bold']);
  }
  for (const [label, value, font] of entries) {
    const y = doc.y;
    doc.font(font).text(label, 200, y, { width: 245, align: 'right' });
    doc.text(value, 455, y, { width: 90, align: 'right' });
    doc.y += 2;
  }
}
