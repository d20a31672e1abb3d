/** RFC 4180 CSV: CRLF line ends; a field with a comma, a quote, CR or LF is quoted, quotes doubled. */

export function csvField(value: string | null): string {
  if (value === null) return '';
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function csvRow(values: (string | null)[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}
