// Package sigv4 verifies AWS Signature Version 4 on requests to the S3
// endpoint: the Authorization header and presigned query strings, over the
// canonical request rebuilt from the raw request URI and the client's own
// SignedHeaders (never by re-signing with a client's signer, which picks
// its own header set).
//
// Nouns:
//   - scope: date/region/service/aws4_request, the part of a signature
//     that names where and when its key is good.
//   - signing key: HMAC-SHA256 of the scope's parts under "AWS4"+secret.
//   - payload hash: what x-amz-content-sha256 says the body is: its hex
//     SHA-256, UNSIGNED-PAYLOAD, or a streaming mode whose chunks carry
//     their own signatures (Verified.Seed starts their chain).
package sigv4
