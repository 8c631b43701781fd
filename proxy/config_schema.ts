/**
 * The building blocks of the configuration schemas: error options that name the offending value and
 * what was expected, and strict tables that list their accepted keys. Shared by `config.ts` and
 * `config_tls.ts` so every key path reads the same way in an error.
 *
 * @module
 */
import { z } from "zod";

/** A short, unambiguous rendering of a configuration value for error messages. */
export function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A zod error option naming the offending value (or its absence) and what was expected instead. */
export function expect(what: string) {
  return {
    error: (issue: { input?: unknown }) =>
      issue.input === undefined ? `missing (expected ${what})` : `${show(issue.input)} is not ${what}`,
  };
}

/** A table whose unknown keys are rejected, with the accepted keys in the message. */
export function table<Shape extends z.ZodRawShape>(shape: Shape) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown key (accepted: ${keys})`
        : `${show(issue.input)} is not a table (expected keys: ${keys})`,
  });
}
