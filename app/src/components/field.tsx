import { useId, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes } from 'react';

/** A labelled input; `hint` is read with it (aria-describedby). */
export function Field({ label, hint, ...input }: { label: string; hint?: ReactNode } & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-describedby={hint ? `${id}-hint` : undefined} {...input} />
      {hint ? (
        <small id={`${id}-hint`} className="muted">
          {hint}
        </small>
      ) : null}
    </div>
  );
}

/** A labelled select. */
export function SelectField({ label, children, ...select }: { label: string; children: ReactNode } & SelectHTMLAttributes<HTMLSelectElement>) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} {...select}>
        {children}
      </select>
    </div>
  );
}

/** A mutation's outcome under a form: the error it met, or a short success note. */
export function FormStatus({ error, success }: { error: unknown; success?: string | null }) {
  if (error) {
    return (
      <p role="alert" className="error-text">
        {error instanceof Error ? error.message : 'It did not work.'}
      </p>
    );
  }
  return success ? (
    <p role="status" className="success-text">
      {success}
    </p>
  ) : null;
}
