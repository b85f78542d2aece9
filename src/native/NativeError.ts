/**
 * The one place where errors thrown by the addon become CommyError values.
 */
import {
  type CommyError,
  DetachedBuffer,
  FileError,
  FileTooShort,
  InvalidArgument,
  InvalidOffset,
  MappingClosed,
  SimdError
} from "../CommyError.js"

interface NodeLikeError {
  readonly code?: unknown
  readonly message?: unknown
  readonly syscall?: unknown
  readonly path?: unknown
}

const optional = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)

/** Maps an addon exception (coded like Node's fs errors) to its CommyError member. */
export const fromNativeError = (cause: unknown, context: string): CommyError => {
  const e = (typeof cause === "object" && cause !== null ? cause : {}) as NodeLikeError
  const code = optional(e.code) ?? ""
  const message = `${context}: ${optional(e.message) ?? String(cause)}`
  switch (code) {
    case "ERR_COMMY_INVALID_ARGUMENT":
    case "ERR_COMMY_LENGTH_MISMATCH":
    case "ERR_COMMY_BUSY":
      return new InvalidArgument({ message })
    case "ERR_COMMY_OUT_OF_BOUNDS":
      return new InvalidOffset({ message })
    case "ERR_COMMY_DETACHED":
      return new DetachedBuffer({ message })
    case "ERR_COMMY_CLOSED":
      return new MappingClosed({ message })
    case "ERR_COMMY_FILE_TOO_SHORT":
      return new FileTooShort({ message, ...pathOf(e) })
    case "ERR_COMMY_KERNEL_UNAVAILABLE":
      return new SimdError({ message })
  }
  if (/^E[A-Z0-9]+$/.test(code)) {
    const syscall = optional(e.syscall)
    return new FileError({
      message,
      errno: code,
      ...(syscall === undefined ? {} : { syscall }),
      ...pathOf(e)
    })
  }
  // A plain TypeError from V8 or anything unforeseen: still typed, never a defect.
  return new InvalidArgument({ message })
}

const pathOf = (e: NodeLikeError): { path?: string } => {
  const path = optional(e.path)
  return path === undefined ? {} : { path }
}
