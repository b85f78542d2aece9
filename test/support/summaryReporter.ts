/**
 * Prints one plain closing line, `vitest: N passed, N failed, N skipped`, after the default
 * reporter: the form CI reads to count tests in any language.
 */
import type { Reporter } from "vitest/reporters"

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: ReadonlyArray<Task> }

const count = (tasks: ReadonlyArray<Task>, totals: { passed: number; failed: number; skipped: number }) => {
  for (const task of tasks) {
    if (task.tasks) count(task.tasks, totals)
    if (task.type !== "test") continue
    const state = task.result?.state
    if (state === "pass") totals.passed++
    else if (state === "fail") totals.failed++
    else totals.skipped++
  }
  return totals
}

export default class SummaryReporter implements Reporter {
  onFinished(files: ReadonlyArray<Task> = [], errors: ReadonlyArray<unknown> = []) {
    const totals = count(files, { passed: 0, failed: 0, skipped: 0 })
    // Unhandled errors fail the run even when every test passed: count them as failures.
    totals.failed += errors.length
    console.log(`\nvitest: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`)
  }
}
