// openid-client v6 (built on oauth4webapi) as a relying party against a running Tessera server.
//
// Started by conformance/run.sh, which sets the environment read below. Prints one
// `PASS [node] …` or `FAIL [node] …` line per check and exits 0 (run.sh counts the lines); an
// exception escaping a check is that check's FAIL, and a crash outside the checks makes run.sh
// count a failure.
//
// The browser is node's fetch with `redirect: 'manual'` and a tiny cookie jar: it follows
// redirects that stay on the issuer, fills the login form, answers the consent form and stops at
// the redirect to the client's redirect_uri, which openid-client then processes.

import * as client from 'openid-client'

const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`missing environment variable ${name}`)
  return value
}
const ISSUER = env('TESSERA_ISSUER')
const CLIENT_ID = env('RP_CLIENT_ID')
const CLIENT_SECRET = env('RP_CLIENT_SECRET')
const REDIRECT_URI = env('RP_REDIRECT_URI')
const RS_ID = env('RS_CLIENT_ID')
const RS_SECRET = env('RS_CLIENT_SECRET')
const USERNAME = env('TEST_USERNAME')
const PASSWORD = env('TEST_PASSWORD')
const USER_ID = env('TEST_USER_ID')
const EMAIL = env('TEST_EMAIL')
const GIVEN_NAME = env('TEST_GIVEN_NAME')
const FAMILY_NAME = env('TEST_FAMILY_NAME')
const SCOPE = 'openid profile email offline_access'
const TAG = '[node]'

// ---------------------------------------------------------------------------------------------
// Reporting

class NotRun extends Error {}

const results = { pass: 0, fail: 0 }
const state = {}

const oneLine = (text, limit = 300) => {
  const flat = String(text).split(/\s+/).join(' ').trim()
  return flat.length <= limit ? flat : `${flat.slice(0, limit - 3)}...`
}

function describeCause(cause) {
  if (!cause || typeof cause !== 'object' || 'error' in cause) return ''
  if (cause instanceof Response) return `; HTTP ${cause.status} ${cause.headers.get('content-type') ?? ''}`
  if (cause instanceof Error) return `; cause: ${cause.message}`
  return ''
}

async function check(name, fn) {
  try {
    await fn()
    results.pass += 1
    console.log(`PASS ${TAG} ${name}`)
  } catch (e) {
    results.fail += 1
    if (e instanceof NotRun) {
      console.log(`FAIL ${TAG} ${name} -- not run: ${e.message}`)
    } else {
      const extra = e?.error ? ` (error=${e.error}${e.status ? `, status ${e.status}` : ''})` : ''
      const cause = describeCause(e?.cause)
      console.log(`FAIL ${TAG} ${name} -- ${oneLine(`${e?.name ?? 'Error'}: ${e?.message ?? e}${extra}${cause}`)}`)
    }
  }
}

function need(...keys) {
  for (const key of keys) {
    if (state[key] === undefined || state[key] === null) throw new NotRun(`needs ${key} from an earlier check`)
  }
  return keys.length === 1 ? state[keys[0]] : keys.map((k) => state[k])
}

function expect(cond, message) {
  if (!cond) {
    const e = new Error(message)
    e.name = 'AssertionError'
    throw e
  }
}

// ---------------------------------------------------------------------------------------------
// A browser without JavaScript

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, ref) => {
    const r = ref.toLowerCase()
    if (r.startsWith('#x')) return String.fromCodePoint(parseInt(r.slice(2), 16))
    if (r.startsWith('#')) return String.fromCodePoint(parseInt(r.slice(1), 10))
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[r]
  })
}

function parseAttrs(source) {
  const attrs = {}
  for (const m of source.matchAll(/([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return attrs
}

function parseForms(html) {
  const forms = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = parseAttrs(m[1])
    const form = { action: attrs.action ?? '', method: (attrs.method ?? 'get').toLowerCase(), fields: {}, inputs: [], buttons: [] }
    for (const i of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = parseAttrs(i[1])
      if (!a.name) continue
      form.inputs.push(a.name)
      if ((a.type ?? 'text').toLowerCase() === 'hidden') form.fields[a.name] = a.value ?? ''
    }
    for (const b of m[2].matchAll(/<button\b([^>]*)>/gi)) {
      const a = parseAttrs(b[1])
      if (a.name) form.buttons.push([a.name, a.value ?? ''])
    }
    forms.push(form)
  }
  return forms
}

class Browser {
  constructor() {
    this.cookies = new Map()
  }

  remember(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq < 1) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some((a) => {
        const [k, v = ''] = a.split('=').map((x) => x.trim())
        if (/^max-age$/i.test(k)) return Number(v) <= 0
        if (/^expires$/i.test(k)) return Date.parse(v) <= Date.now()
        return false
      })
      if (expired) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  async fetch(url, init = {}) {
    const headers = new Headers(init.headers)
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    const response = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(15000) })
    this.remember(response)
    return response
  }

  // Returns { pages, location } when the server redirects off the issuer (to the client), or
  // { pages, response, body } for a final page on the issuer.
  async authorize(url, { decision = 'allow', login = true } = {}) {
    const pages = []
    let response = await this.fetch(url)
    for (let step = 0; step < 12; step++) {
      if ([301, 302, 303, 307, 308].includes(response.status)) {
        const target = new URL(response.headers.get('location'), response.url || url)
        if (target.origin !== new URL(ISSUER).origin) return { pages, location: target }
        response = await this.fetch(target)
        continue
      }
      const body = await response.text()
      if (response.status !== 200 || !(response.headers.get('content-type') ?? '').includes('text/html')) {
        return { pages, response, body }
      }
      const form = parseForms(body).find((f) => f.method === 'post')
      if (!form) return { pages, response, body }
      const data = new URLSearchParams(form.fields)
      if (form.inputs.includes('password')) {
        expect(login, 'the server asked for a login where none was expected')
        data.set('username', USERNAME)
        data.set('password', PASSWORD)
        pages.push('login')
      } else if (form.buttons.some(([name]) => name === 'decision')) {
        data.set('decision', decision)
        pages.push('consent')
      } else {
        return { pages, response, body }
      }
      response = await this.fetch(new URL(form.action, response.url || url), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: data,
      })
    }
    throw new Error(`too many steps in the authorization (pages ${pages})`)
  }
}

// ---------------------------------------------------------------------------------------------
// openid-client pieces

// Discovery is checked on its own; fall back to the documented paths so the behaviour behind
// them is still exercised when only the metadata is missing.
function withFallbacks(metadata) {
  return {
    ...metadata,
    revocation_endpoint: metadata.revocation_endpoint ?? `${ISSUER}/revoke`,
    introspection_endpoint: metadata.introspection_endpoint ?? `${ISSUER}/introspect`,
  }
}

function configFor(metadata, clientId, secret, auth) {
  const config = new client.Configuration(withFallbacks(metadata), clientId, secret, auth)
  client.allowInsecureRequests(config)
  return config
}

async function start(config, browser, params = {}, options = {}) {
  const verifier = client.randomPKCECodeVerifier()
  const nonce = params.nonce === null ? undefined : client.randomNonce()
  const st = client.randomState()
  const query = {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: st,
    ...params,
  }
  if (nonce) query.nonce = nonce
  else delete query.nonce
  const url = client.buildAuthorizationUrl(config, query)
  const outcome = await browser.authorize(url, options)
  return { outcome, verifier, nonce, state: st, url }
}

function redeem(config, flow, checks = {}) {
  expect(flow.outcome.location, `no redirect to the client (pages ${flow.outcome.pages}, status ${flow.outcome.response?.status})`)
  return client.authorizationCodeGrant(config, flow.outcome.location, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    ...(flow.nonce ? { expectedNonce: flow.nonce } : { idTokenExpected: true }),
    ...checks,
  })
}

async function expectInvalidGrant(promise, what) {
  try {
    await promise
  } catch (e) {
    expect(e instanceof client.ResponseBodyError, `${what}: ${e?.name}: ${e?.message}`)
    expect(e.error === 'invalid_grant', `${what}: error ${e.error}, expected invalid_grant`)
    expect(e.status === 400, `${what}: status ${e.status}, expected 400`)
    return
  }
  throw new Error(`${what} succeeded; expected invalid_grant`)
}

async function userinfoStatus(config, accessToken) {
  try {
    await client.fetchUserInfo(config, accessToken, client.skipSubjectCheck)
    return 200
  } catch (e) {
    if (typeof e?.status === 'number') return e.status
    if (e?.cause instanceof Response) return e.cause.status
    throw e
  }
}

function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString())
}

// ---------------------------------------------------------------------------------------------
// The checks

async function main() {
  const browser = new Browser()
  let config, rs, meta

  await check('discovery: openid-client discovers the issuer (code, S256, RS256, iss parameter)', async () => {
    config = await client.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, client.ClientSecretPost(CLIENT_SECRET), {
      execute: [client.allowInsecureRequests],
    })
    meta = config.serverMetadata()
    expect(meta.issuer === ISSUER, `issuer ${meta.issuer}`)
    expect(meta.supportsPKCE('S256'), 'S256 not advertised')
    expect(meta.response_types_supported?.includes('code'), 'response type code not advertised')
    expect(meta.id_token_signing_alg_values_supported?.includes('RS256'), 'RS256 not advertised')
    expect(meta.authorization_response_iss_parameter_supported === true, 'RFC 9207 not advertised')
    state.config = config
    // Token management goes through configurations that have the endpoints even while discovery
    // lacks them (checked just below).
    state.mgmt = configFor(meta, CLIENT_ID, CLIENT_SECRET, client.ClientSecretPost(CLIENT_SECRET))
    rs = configFor(meta, RS_ID, RS_SECRET, client.ClientSecretBasic(RS_SECRET))
    state.rs = rs
  })

  await check('discovery: revocation, introspection and end_session endpoints', async () => {
    const m = need('config').serverMetadata()
    for (const [key, path] of [['revocation_endpoint', '/revoke'], ['introspection_endpoint', '/introspect'], ['end_session_endpoint', '/logout']]) {
      expect(m[key] === ISSUER + path, `${key} = ${m[key]}, expected ${ISSUER + path}`)
    }
  })

  await check('code flow: login and consent forms, redirect with code, state and iss (RFC 9207)', async () => {
    const cfg = need('config')
    const flow = await start(cfg, browser)
    expect(JSON.stringify(flow.outcome.pages) === '["login","consent"]', `pages shown: ${flow.outcome.pages}`)
    expect(flow.outcome.location, `no redirect to the client (status ${flow.outcome.response?.status})`)
    const loc = flow.outcome.location
    expect(loc.href.startsWith(`${REDIRECT_URI}?`), `redirected to ${loc}`)
    expect(loc.searchParams.get('code'), 'no code')
    expect(loc.searchParams.get('state') === flow.state, 'state mismatch')
    expect(loc.searchParams.get('iss') === ISSUER, `iss ${loc.searchParams.get('iss')}`)
    state.flow = flow
  })

  await check('token: authorizationCodeGrant (client_secret_post, PKCE) validates the id_token (JWKS signature, iss, aud, exp, nonce, state, iss param)', async () => {
    const [cfg, flow] = need('config', 'flow')
    const tokens = await redeem(cfg, flow)
    expect(tokens.token_type?.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`)
    expect(tokens.access_token, 'no access_token')
    expect(tokens.expiresIn() > 0, 'no expires_in')
    const claims = tokens.claims()
    expect(claims, 'no id_token')
    expect(claims.sub === USER_ID, `sub ${claims.sub} != ${USER_ID}`)
    expect(claims.nonce === flow.nonce, 'nonce')
    expect(jwtHeader(tokens.id_token).alg === 'RS256', `alg ${jwtHeader(tokens.id_token).alg}`)
    state.tokens = tokens
    state.claims = claims
  })

  await check('token: refresh_token issued (refresh_token grant + offline_access)', async () => {
    const tokens = need('tokens')
    expect(tokens.refresh_token, `no refresh_token; keys ${Object.keys(tokens).sort()}`)
    state.rt1 = tokens.refresh_token
  })

  await check('userinfo GET via fetchUserInfo (expected sub): profile and email claims', async () => {
    const [cfg, tokens, claims] = need('config', 'tokens', 'claims')
    const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub)
    const expected = { email: EMAIL, given_name: GIVEN_NAME, family_name: FAMILY_NAME, preferred_username: USERNAME, name: `${GIVEN_NAME} ${FAMILY_NAME}` }
    for (const [key, value] of Object.entries(expected)) expect(info[key] === value, `${key} = ${info[key]}`)
  })

  await check('userinfo POST with the Bearer header (fetchProtectedResource)', async () => {
    const [cfg, tokens, claims] = need('config', 'tokens', 'claims')
    const response = await client.fetchProtectedResource(cfg, tokens.access_token, new URL(cfg.serverMetadata().userinfo_endpoint), 'POST')
    expect(response.status === 200, `status ${response.status}`)
    expect((await response.json()).sub === claims.sub, 'sub mismatch')
  })

  await check('openid-client rejects an id_token whose nonce differs from the one sent', async () => {
    const cfg = need('config')
    const flow = await start(cfg, browser)
    try {
      await redeem(cfg, flow, { expectedNonce: 'not-the-nonce' })
    } catch (e) {
      const why = `${e.message} ${e.cause?.message ?? ''} ${e.cause?.cause?.claim ?? ''}`
      expect(/nonce/i.test(why), `rejected for another reason: ${why}`)
      return
    }
    throw new Error('accepted')
  })

  await check('prompt=none with a session: code without any page, same sub and auth_time', async () => {
    const [cfg, first] = need('config', 'claims')
    const flow = await start(cfg, browser, { prompt: 'none' }, { login: false })
    expect(flow.outcome.pages.length === 0, `pages shown: ${flow.outcome.pages}`)
    const claims = (await redeem(cfg, flow)).claims()
    expect(claims?.sub === first.sub, 'sub differs')
    expect(claims.auth_time === first.auth_time, `auth_time ${claims.auth_time} != ${first.auth_time}`)
  })

  await check('id_token_hint (with prompt=none) is accepted', async () => {
    const [cfg, tokens] = need('config', 'tokens')
    const flow = await start(cfg, browser, { prompt: 'none', id_token_hint: tokens.id_token }, { login: false })
    expect((await redeem(cfg, flow)).claims()?.sub === USER_ID, 'sub')
  })

  for (const [what, params] of [
    ['display=page', { display: 'page' }],
    ['display=popup', { display: 'popup' }],
    ['login_hint', { login_hint: USERNAME }],
    ['ui_locales', { ui_locales: 'fr' }],
    ['claims_locales', { claims_locales: 'se' }],
  ]) {
    await check(`${what} is accepted (flow completes, id_token valid)`, async () => {
      const cfg = need('config')
      const flow = await start(cfg, browser, params)
      expect((await redeem(cfg, flow)).claims()?.sub === USER_ID, 'sub')
    })
  }

  await check('prompt=login: the login page is shown again despite the session', async () => {
    const cfg = need('config')
    const flow = await start(cfg, browser, { prompt: 'login' })
    expect(flow.outcome.pages.includes('login'), `pages shown: ${flow.outcome.pages}`)
    const tokens = await redeem(cfg, flow)
    expect(tokens.claims()?.auth_time >= need('claims').auth_time, 'auth_time went back')
  })

  await check('request without nonce succeeds (code flow)', async () => {
    const cfg = need('config')
    const flow = await start(cfg, browser, { nonce: null })
    const tokens = await redeem(cfg, flow)
    expect(tokens.claims() && tokens.claims().nonce === undefined, 'id_token carries a nonce')
  })

  await check('scope in another order (email openid) succeeds', async () => {
    const cfg = need('config')
    const flow = await start(cfg, browser, { scope: 'email openid' })
    const tokens = await redeem(cfg, flow)
    const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub)
    expect(info.email === EMAIL, `email ${info.email}`)
  })

  await check('scope openid profile: userinfo has profile claims and no email', async () => {
    const cfg = need('config')
    const flow = await start(cfg, browser, { scope: 'openid profile' })
    const tokens = await redeem(cfg, flow)
    const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub)
    expect(info.given_name === GIVEN_NAME && info.family_name === FAMILY_NAME, `profile claims ${JSON.stringify(info)}`)
    expect(info.preferred_username === USERNAME, `preferred_username ${info.preferred_username}`)
    expect(!('email' in info), 'email present with scope openid profile')
    expect(!tokens.refresh_token, 'refresh_token issued without offline_access')
  })

  await check('code reuse: second redemption of a code is invalid_grant', async () => {
    const cfg = need('config')
    const flow = await start(cfg, browser)
    const first = await redeem(cfg, flow)
    await expectInvalidGrant(redeem(cfg, flow), 'second redemption')
    state.reusedAccessToken = first.access_token
  })

  await check('code reuse: the access token issued from the replayed code no longer works', async () => {
    const [cfg, at] = need('config', 'reusedAccessToken')
    const status = await userinfoStatus(cfg, at)
    expect(status === 401, `userinfo answered ${status}`)
  })

  await check('introspection (rs client, tokenIntrospection): active access token', async () => {
    const [rsCfg, tokens] = need('rs', 'tokens')
    const info = await client.tokenIntrospection(rsCfg, tokens.access_token, { token_type_hint: 'access_token' })
    expect(info.active === true, `answer ${JSON.stringify(info)}`)
    expect(info.client_id === CLIENT_ID, `client_id ${info.client_id}`)
    expect(info.sub === USER_ID, `sub ${info.sub}`)
    expect(info.scope?.split(' ').includes('openid'), `scope ${info.scope}`)
    expect(Number.isInteger(info.exp) && Number.isInteger(info.iat), 'exp/iat')
    expect(info.token_type, 'no token_type')
  })

  await check('introspection: active refresh token, for its own client', async () => {
    const [cfg, rt] = need('config', 'rt1')
    const info = await client.tokenIntrospection(cfg, rt, { token_type_hint: 'refresh_token' })
    expect(info.active === true, `answer ${JSON.stringify(info)}`)
  })

  await check('introspection: a refresh token is exactly {"active": false} for a resource server', async () => {
    const [rsCfg, rt] = need('rs', 'rt1')
    const info = await client.tokenIntrospection(rsCfg, rt, { token_type_hint: 'refresh_token' })
    expect(JSON.stringify(info) === '{"active":false}', `answer ${JSON.stringify(info)}`)
  })

  await check('introspection: unknown token is exactly {"active": false}', async () => {
    const rsCfg = need('rs')
    const info = await client.tokenIntrospection(rsCfg, `not-a-token-${client.randomState()}`)
    expect(JSON.stringify(info) === '{"active":false}', `answer ${JSON.stringify(info)}`)
  })

  await check('refresh: refreshTokenGrant rotates the refresh token and issues a new access token', async () => {
    const [cfg, tokens, rt1] = need('config', 'tokens', 'rt1')
    const t2 = await client.refreshTokenGrant(cfg, rt1)
    expect(t2.access_token && t2.access_token !== tokens.access_token, 'no new access token')
    expect(t2.refresh_token && t2.refresh_token !== rt1, 'refresh token not rotated')
    if (t2.id_token) expect(t2.claims().sub === USER_ID, 'refreshed id_token sub differs')
    expect((await userinfoStatus(cfg, t2.access_token)) === 200, 'new access token refused at userinfo')
    state.t2 = t2
  })

  await check('refresh reuse: presenting the rotated refresh token again is invalid_grant', async () => {
    const [cfg, rt1] = need('config', 'rt1')
    need('t2')
    await expectInvalidGrant(client.refreshTokenGrant(cfg, rt1), 'reused refresh token')
  })

  await check('refresh reuse: the newest refresh token of the family is now dead too', async () => {
    const [cfg, t2] = need('config', 't2')
    await expectInvalidGrant(client.refreshTokenGrant(cfg, t2.refresh_token), 'newest refresh token')
  })

  await check('refresh reuse: the family\'s access tokens introspect as {"active": false}', async () => {
    const [rsCfg, tokens, t2] = need('rs', 'tokens', 't2')
    for (const [name, at] of [['first', tokens.access_token], ['refreshed', t2.access_token]]) {
      const info = await client.tokenIntrospection(rsCfg, at)
      expect(JSON.stringify(info) === '{"active":false}', `${name} access token: ${JSON.stringify(info)}`)
    }
  })

  await check('revocation (tokenRevocation): access token revoked, then inactive and refused at userinfo', async () => {
    const [cfg, mgmt, rsCfg] = need('config', 'mgmt', 'rs')
    const tokens = await redeem(cfg, await start(cfg, browser))
    await client.tokenRevocation(mgmt, tokens.access_token, { token_type_hint: 'access_token' })
    const info = await client.tokenIntrospection(rsCfg, tokens.access_token)
    expect(info.active === false, `introspection after revocation: ${JSON.stringify(info)}`)
    const status = await userinfoStatus(cfg, tokens.access_token)
    expect(status === 401, `userinfo answered ${status}`)
  })

  await check('revocation: refresh token revoked, refresh is invalid_grant, the family\'s access token inactive', async () => {
    const [cfg, mgmt, rsCfg] = need('config', 'mgmt', 'rs')
    const tokens = await redeem(cfg, await start(cfg, browser))
    expect(tokens.refresh_token, 'no refresh_token')
    await client.tokenRevocation(mgmt, tokens.refresh_token, { token_type_hint: 'refresh_token' })
    await expectInvalidGrant(client.refreshTokenGrant(cfg, tokens.refresh_token), 'revoked refresh token')
    const info = await client.tokenIntrospection(rsCfg, tokens.access_token)
    expect(info.active === false, `access token of the revoked family: ${JSON.stringify(info)}`)
  })

  await check('revocation: unknown token is accepted (200)', async () => {
    const mgmt = need('mgmt')
    await client.tokenRevocation(mgmt, `not-a-token-${client.randomState()}`)
  })
}

await main()
console.error(`[node] ${results.pass} checks passed, ${results.fail} checks failed`)
