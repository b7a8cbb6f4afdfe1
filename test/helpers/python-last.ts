import { BaseSequencer, type TestSpecification } from 'vitest/node'

/** vitest's own order, with test/python.test.ts last: under `npm test` it only waits for the
 * Python suite that started with the run, so every Node file goes first, beside it. */
export default class PythonLast extends BaseSequencer {
  override async sort (files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    const isPython = (spec: TestSpecification): boolean => spec.moduleId.endsWith('/test/python.test.ts')
    return [...sorted.filter((spec) => !isPython(spec)), ...sorted.filter(isPython)]
  }
}
