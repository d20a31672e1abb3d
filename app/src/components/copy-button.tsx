import { useState } from 'react';

/** Copies a value to the clipboard and says so (for screen readers too). */
export function CopyButton({ value, label = 'Copy' }: { value: string; label?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setState('copied');
    } catch {
      // No clipboard permission (or not a secure context): the value stays selectable on screen.
      setState('failed');
    }
  };
  return (
    <>
      <button type="button" onClick={() => void copy()}>
        {label}
      </button>
      <span className="muted" role="status" aria-live="polite">
        {state === 'copied' ? ' Copied' : state === 'failed' ? ' Copy failed: select and copy it' : ''}
      </span>
    </>
  );
}
