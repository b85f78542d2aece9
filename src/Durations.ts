/**
 * Durations given as options (`"10 millis"`, a number of ms, a `Duration`), read once into
 * milliseconds. `Duration.decode` throws on input it cannot read, which would be a defect; a
 * caller outside TypeScript gets a typed `InvalidArgument` naming the option instead.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { InvalidArgument } from "./CommyError.js"

/** `input` in milliseconds (`fallback` when undefined; Infinity for an infinite duration). */
export const millisOf = (
  name: string,
  input: Duration.DurationInput | undefined,
  fallback: Duration.DurationInput
): Effect.Effect<number, InvalidArgument> =>
  Option.match(Duration.decodeUnknown(input === undefined ? fallback : input), {
    onNone: () => Effect.fail(new InvalidArgument({ message: `${name} is not a duration: ${String(input)}` })),
    onSome: (duration) => Effect.succeed(Duration.toMillis(duration))
  })
