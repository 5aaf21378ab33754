// Uploads a file to a deoss gateway with tus-js-client, signing every
// request as deoss's native API wants (test/e2e/tus_test.go runs it).
//
//   node upload.mjs <abort-resume|parallel|chunked> <file>
//
// Environment: DEOSS_TUS (the gateway's /tus/ URL), DEOSS_TARGET (the
// gateway's account), DEOSS_ACCOUNT and DEOSS_KEY_SEED (the user's address
// and ed25519 seed, hex). Prints JSON lines: {"progress": n},
// {"offset": n} for each offset the gateway reports, then {"fid": "..."}.
import * as tus from 'tus-js-client'
import { createPrivateKey, randomBytes, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

const [mode, file] = process.argv.slice(2)
const env = process.env
const key = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(env.DEOSS_KEY_SEED, 'hex')]),
  format: 'der',
  type: 'pkcs8',
})
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

// The body is sent unsigned: the test gateway allows that over plain HTTP
// (allow_insecure); over TLS any gateway does.
function signRequest (req) {
  const url = new URL(req.getURL())
  const expiry = Math.floor(Date.now() / 1000) + 300
  const msg = ['v2', String(expiry), randomBytes(16).toString('hex'), env.DEOSS_TARGET, req.getMethod(),
    url.pathname + url.search, 'UNSIGNED-PAYLOAD', '-'].join(' ')
  req.setHeader('Account', env.DEOSS_ACCOUNT)
  req.setHeader('Message', msg)
  req.setHeader('Signature', sign(null, Buffer.from('deoss/http/v2\n' + msg), key).toString('hex'))
}

const data = readFileSync(file)
let fid = ''
function options (extra) {
  return {
    endpoint: env.DEOSS_TUS,
    metadata: { filename: basename(file), territory: 'home' },
    retryDelays: [100, 300, 500, 1000, 2000, 3000, 5000, 5000, 5000, 5000],
    onBeforeRequest: signRequest,
    onAfterResponse: (req, res) => {
      const f = res.getHeader('Deoss-Fid')
      if (f) fid = f
      if (req.getMethod() === 'HEAD') out({ offset: Number(res.getHeader('Upload-Offset')) })
    },
    ...extra,
  }
}

function run (opts) {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(data, { ...opts, onSuccess: () => resolve(up), onError: reject })
    up.start()
    opts.started?.(up)
  })
}

try {
  switch (mode) {
    case 'abort-resume': {
      // Aborted once about 8 MiB went out, then resumed from its URL.
      let url = ''
      await new Promise((resolve, reject) => {
        const up = new tus.Upload(data, options({
          onProgress: (sent) => {
            url = up.url
            if (sent >= 8 << 20) up.abort().then(resolve, reject)
          },
          onSuccess: () => reject(new Error('finished before the abort')),
          onError: reject,
        }))
        up.start()
      })
      out({ aborted: url })
      await run(options({ uploadUrl: url }))
      break
    }
    case 'parallel':
      // Four partial uploads at once, concatenated by a final one.
      await run(options({ parallelUploads: 4 }))
      break
    case 'chunked':
      // 4 MiB PATCHes, each reported, so the test can kill the gateway
      // between them; the retries resume from the offset it reports.
      await run(options({ chunkSize: 4 << 20, onProgress: (sent) => out({ progress: sent }) }))
      break
    default:
      throw new Error('mode: abort-resume, parallel or chunked')
  }
  out({ fid })
} catch (e) {
  process.stderr.write(String(e) + '\n')
  process.exit(1)
}
