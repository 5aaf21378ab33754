// Package console is the gateway's web console: static pages embedded in
// the binary (no framework, nothing loaded from elsewhere) and its sign-in.
//
// No key enters the browser. `deoss console` (and `deoss dev`) prints a
// short-lived link signed by the user's key; the gateway checks it, spends
// its nonce (a link works once) and answers with a session cookie
// (HttpOnly, SameSite=Strict, Secure over TLS, expiring). Requests made
// with the cookie must also carry the X-Deoss-Console header, which a page
// of another origin cannot send without a preflight the gateway never
// grants: with SameSite=Strict, that keeps other sites from acting with a
// user's session (CSRF).
package console
