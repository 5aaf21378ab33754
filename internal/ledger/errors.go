package ledger

import (
	"errors"
	"fmt"
)

// Code is the result code of a transaction (0 is success). Codes are part of
// the chain's interface: clients map them back to these errors.
type Code uint32

const (
	CodeOK Code = iota
	CodeMalformed
	CodeWrongChain
	CodeBadSignature
	CodeBadNonce
	CodeUnauthorized
	CodeInsufficientFunds
	CodeInsufficientSpace
	CodeNotFound
	CodeConflict
	CodeInvalid
	CodeExpired
	CodeBadProof
	CodeTooMany
)

// Sentinel errors, one per code.
var (
	ErrMalformed         = &Error{Code: CodeMalformed, Msg: "malformed transaction"}
	ErrWrongChain        = &Error{Code: CodeWrongChain, Msg: "wrong chain id"}
	ErrBadSignature      = &Error{Code: CodeBadSignature, Msg: "bad signature"}
	ErrBadNonce          = &Error{Code: CodeBadNonce, Msg: "bad nonce"}
	ErrUnauthorized      = &Error{Code: CodeUnauthorized, Msg: "unauthorized"}
	ErrInsufficientFunds = &Error{Code: CodeInsufficientFunds, Msg: "insufficient funds"}
	ErrInsufficientSpace = &Error{Code: CodeInsufficientSpace, Msg: "insufficient space"}
	ErrNotFound          = &Error{Code: CodeNotFound, Msg: "not found"}
	ErrConflict          = &Error{Code: CodeConflict, Msg: "conflict"}
	ErrInvalid           = &Error{Code: CodeInvalid, Msg: "invalid"}
	ErrExpired           = &Error{Code: CodeExpired, Msg: "expired"}
	ErrBadProof          = &Error{Code: CodeBadProof, Msg: "proof does not verify"}
	ErrTooMany           = &Error{Code: CodeTooMany, Msg: "too many"}
	sentinels            = []*Error{nil, ErrMalformed, ErrWrongChain, ErrBadSignature, ErrBadNonce, ErrUnauthorized, ErrInsufficientFunds, ErrInsufficientSpace, ErrNotFound, ErrConflict, ErrInvalid, ErrExpired, ErrBadProof, ErrTooMany}
)

// Error is a ledger error with its result code.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is matches any *Error of the same code, so errors.Is(err, ErrNotFound) holds
// for every not-found error whatever its detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// errf returns an error of kind's code with a detailed message.
func errf(kind *Error, format string, args ...any) error {
	return &Error{Code: kind.Code, Msg: kind.Msg + ": " + fmt.Sprintf(format, args...)}
}

// CodeOf returns the result code of err (CodeInvalid for errors that are not
// ledger errors, which should not happen).
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInvalid
}

// FromCode rebuilds a typed error from a result code and log, for clients.
func FromCode(code Code, log string) error {
	if code == CodeOK {
		return nil
	}
	if int(code) < len(sentinels) {
		return &Error{Code: code, Msg: log}
	}
	return &Error{Code: CodeInvalid, Msg: fmt.Sprintf("code %d: %s", code, log)}
}

// kept is a failed message whose writes stay: a wrong proof fails, yet the
// fault it earned is recorded.
type kept struct{ error }

func (k kept) Unwrap() error { return k.error }

func keep(err error) error { return kept{err} }
