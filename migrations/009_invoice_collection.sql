-- Payments, continued: postpaid invoices charged to the saved card. The collector decides under a
-- transaction lock per invoice; this index makes a second charge in flight for one invoice
-- impossible whatever happens.
CREATE UNIQUE INDEX payments_one_pending_invoice ON payments (invoice_id) WHERE kind = 'invoice' AND status = 'pending';
CREATE INDEX payments_invoice ON payments (invoice_id) WHERE invoice_id IS NOT NULL;
