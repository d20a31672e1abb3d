import type { FastifyBaseLogger } from 'fastify';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { isUnavailableDbError } from '../platform/db.js';
import { AppError, InvariantError, unavailable, type ErrorCode } from '../platform/errors.js';

const DATABASE_RETRY_AFTER_SECONDS = 2;

/**
 * A GraphQL error in the spec's format, with the REST problem's stable code in extensions.code
 * (and its field errors in extensions.errors). An error no code explains is a bug: logged, and
 * answered as internal_error without its message.
 */
export function formatGraphqlError(error: GraphQLError, log: FastifyBaseLogger, beforeRun = false): GraphQLFormattedError {
  const original = error.originalError;
  // Refused before anything ran (variables that do not fit their types, an unknown operation): the request is wrong.
  if (beforeRun && !(original instanceof AppError)) return withCode(error, 'invalid_request', error.message);
  const known = original instanceof AppError ? original : isUnavailableDbError(original) ? unavailable('The database is unavailable; retry shortly', DATABASE_RETRY_AFTER_SECONDS) : null;
  if (known) return withCode(error, known.code, known.detail, known.errors ? { errors: known.errors } : {});
  if (original) {
    log.error({ err: original, path: error.path }, original instanceof InvariantError ? 'invariant broken' : 'unhandled error');
    return withCode(error, 'internal_error', 'Internal error; it has been logged');
  }
  // GraphQL's own refusals: syntax, validation, variables that do not fit their types.
  return withCode(error, 'invalid_request', error.message);
}

/** A refusal made before anything ran (depth, cost) as a GraphQL error. */
export function refusalError(code: ErrorCode, message: string): GraphQLFormattedError {
  return { message, extensions: { code } };
}

function withCode(error: GraphQLError, code: ErrorCode, message: string, extra: Record<string, unknown> = {}): GraphQLFormattedError {
  const { locations, path } = error.toJSON();
  return { message, ...(locations ? { locations } : {}), ...(path ? { path } : {}), extensions: { code, ...extra } };
}
