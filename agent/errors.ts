/**
 * Failures a user can fix, worded for them: what went wrong and what to do. `main.ts` prints the message
 * as the one log line before exiting.
 *
 * @module
 */

/** A start-up failure with a remedy in its message. */
export class AgentError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AgentError";
  }
}
