package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Limits of aws-chunked bodies: a chunk's header line and the trailer are
// small; a chunk's data is streamed (hashed as it passes, checked at its
// end), so its size bounds nothing held in memory.
const (
	maxChunkLine   = 4096
	maxTrailer     = 8192
	maxChunkSize   = 1 << 30
	emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Payload returns the request body as the bytes the client meant, checked
// as the signature's payload mode says: a hex SHA-256 is checked at EOF; an
// aws-chunked body (the STREAMING-* modes) is decoded, each chunk's
// signature checked at its end against the chain seeded by the request's
// signature, and its trailer (checked too when signed) put into trailer
// before EOF is returned. Any refusal is an *Error from Read, never EOF, so
// a caller that commits only at EOF commits nothing that failed.
func (vr *Verified) Payload(body io.Reader, trailer http.Header) io.Reader {
	switch vr.PayloadHash {
	case StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return &chunkReader{r: bufio.NewReaderSize(body, 16<<10), vr: vr, prev: vr.Seed, trailer: trailer,
			signed: vr.PayloadHash != StreamingUnsignedTrailer, hasTrailer: vr.PayloadHash != StreamingPayload}
	}
	return vr.Body(body)
}

// Streaming reports whether the body is aws-chunked.
func (vr *Verified) Streaming() bool {
	return strings.HasPrefix(vr.PayloadHash, "STREAMING-")
}

type chunkReader struct {
	r          *bufio.Reader
	vr         *Verified
	prev       string // the last signature of the chain
	trailer    http.Header
	signed     bool
	hasTrailer bool

	left    int64     // data bytes left in the current chunk
	want    string    // the current chunk's signature
	h       hash.Hash // of the current chunk's data
	started bool
	err     error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if c.started {
			if err := c.endChunk(false); err != nil {
				c.err = err
				return 0, err
			}
		}
		last, err := c.startChunk()
		if err != nil {
			c.err = err
			return 0, err
		}
		c.started = true
		if last {
			if err := c.endChunk(true); err != nil {
				c.err = err
				return 0, err
			}
			c.err = c.readTrailer()
			if c.err == nil {
				c.err = io.EOF
			}
			return 0, c.err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = fail(CodeIncomplete, "the aws-chunked body ended inside a chunk")
		return n, c.err
	}
	return n, nil
}

// startChunk reads "size[;chunk-signature=sig]\r\n".
func (c *chunkReader) startChunk() (last bool, err error) {
	line, err := c.line()
	if err != nil {
		return false, err
	}
	size, ext, _ := strings.Cut(line, ";")
	n, perr := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
	if perr != nil || n < 0 || n > maxChunkSize {
		return false, fail(CodeIncomplete, "aws-chunked: bad chunk size %q", size)
	}
	c.want = ""
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok || len(sig) != 64 {
			return false, fail(CodeSignatureMismatch, "aws-chunked: a chunk without its signature")
		}
		c.want = sig
		c.h = sha256.New()
	}
	c.left = n
	return n == 0, nil
}

// endChunk checks the chunk's signature and reads its closing CRLF (a last
// chunk has none of its own: the trailer or a blank line follows).
func (c *chunkReader) endChunk(last bool) error {
	if c.signed {
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.vr.Time.UTC().Format(timeFormat) + "\n" + c.vr.Scope + "\n" + c.prev + "\n" +
			emptySHA256Hex + "\n" + hex.EncodeToString(c.h.Sum(nil))
		got := hex.EncodeToString(hmacSHA256(c.vr.key, []byte(sts)))
		if !hmac.Equal([]byte(got), []byte(c.want)) {
			return fail(CodeSignatureMismatch, "aws-chunked: a chunk's signature does not match")
		}
		c.prev = got
	}
	if last {
		return nil
	}
	var crlf [2]byte
	if _, err := io.ReadFull(c.r, crlf[:]); err != nil || crlf != [2]byte{'\r', '\n'} {
		return fail(CodeIncomplete, "aws-chunked: a chunk's data is not followed by CRLF")
	}
	return nil
}

// line reads one CRLF-ended line, bounded.
func (c *chunkReader) line() (string, error) {
	var b []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkLine {
			return "", fail(CodeIncomplete, "aws-chunked: a line longer than %d bytes", maxChunkLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", fail(CodeIncomplete, "aws-chunked: the body ended early")
		}
		break
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// readTrailer reads the trailer lines to the blank line ending the body;
// signed modes need x-amz-trailer-signature over the lines before it.
func (c *chunkReader) readTrailer() error {
	var raw bytes.Buffer
	sig := ""
	n := 0
	for {
		frag, err := c.r.ReadSlice('\n')
		n += len(frag)
		if n > maxTrailer {
			return fail(CodeIncomplete, "aws-chunked: a trailer longer than %d bytes", maxTrailer)
		}
		if err == io.EOF && len(frag) == 0 {
			break // some clients end without the final blank line
		}
		if err != nil && err != io.EOF {
			return fail(CodeIncomplete, "aws-chunked: the trailer ended early")
		}
		line := strings.TrimRight(string(frag), "\r\n")
		if line == "" {
			if c.signed && c.hasTrailer && sig == "" && raw.Len() > 0 {
				continue // minio-go puts a blank line before the signature
			}
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return fail(CodeIncomplete, "aws-chunked: trailer line %q", line)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			sig = value
			continue
		}
		if !c.hasTrailer {
			return fail(CodeIncomplete, "aws-chunked: a trailer on a body that declared none")
		}
		raw.WriteString(name + ":" + value + "\n")
		if c.trailer != nil {
			c.trailer.Set(name, value)
		}
		if err == io.EOF {
			break
		}
	}
	if c.signed && c.hasTrailer {
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.vr.Time.UTC().Format(timeFormat) + "\n" + c.vr.Scope + "\n" + c.prev + "\n" +
			hexSHA256(raw.Bytes())
		got := hex.EncodeToString(hmacSHA256(c.vr.key, []byte(sts)))
		if sig == "" || !hmac.Equal([]byte(got), []byte(sig)) {
			return fail(CodeSignatureMismatch, "aws-chunked: the trailer's signature is missing or does not match")
		}
	}
	return nil
}
