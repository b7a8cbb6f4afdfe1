import { afterEach } from 'vitest'
import { cleanUpChildren } from './children.js'
import { closeRawPushes } from './raw-push.js'

// A setup file (vitest.config.ts): vitest runs it again before each test file, while the
// helpers it imports are evaluated once per worker. With `isolate: false` the test files share
// one worker and their modules, so a hook registered when children.ts is first imported would
// clean up after the first file's tests only; registered here, it runs after every test of
// every file, over the children and temp dirs that the shared helpers track.
afterEach(async () => {
  closeRawPushes()
  await cleanUpChildren()
})
