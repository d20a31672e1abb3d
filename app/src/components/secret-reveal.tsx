import { useId } from 'react';
import { CopyButton } from './copy-button';

/** A secret the server shows once (a key, a signing secret): selectable, copyable, then dismissed. */
export function SecretReveal({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  const id = useId();
  return (
    <div className="secret" role="status">
      <label htmlFor={id}>{label}</label>
      <input id={id} readOnly value={value} onFocus={(e) => e.target.select()} />
      <div className="actions">
        <CopyButton value={value} label="Copy secret" />
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
