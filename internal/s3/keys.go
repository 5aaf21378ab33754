package s3

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/s3/sigv4"
	"github.com/deoss/deoss/internal/types"
)

// Keys are the S3 credentials this gateway issued, in bbolt. A secret is
// kept sealed (AES-256-GCM under a key derived from the gateway's
// identity, the access key as associated data), so the file alone gives no
// one a credential; a revoked key is deleted and fails its next request.
type Keys struct {
	db   *bolt.DB
	aead cipher.AEAD
	now  func() time.Time
}

// Credential is an issued key; Secret is set only when it is created.
type Credential struct {
	AccessKey string        `json:"access_key"`
	Secret    string        `json:"secret_key,omitempty"`
	Owner     types.Address `json:"owner"`
	// Territory is where CreateBucket binds a bucket whose request names
	// no territory of the owner.
	Territory string    `json:"territory"`
	Created   time.Time `json:"created"`
}

type storedKey struct {
	Credential
	Sealed []byte `json:"sealed"`
}

var bucketCreds = []byte("credentials")

// MaxKeysPerAccount bounds the credentials one account holds here.
const MaxKeysPerAccount = 100

// Errors of Keys.
var (
	ErrNoCredential = errors.New("no such access key")
	ErrTooManyKeys  = fmt.Errorf("an account holds at most %d access keys here", MaxKeysPerAccount)
)

// OpenKeys opens (or creates) the credentials at path, sealed under a key
// derived from seed (the gateway key's seed).
func OpenKeys(path string, seed []byte) (*Keys, error) {
	db, err := fsutil.OpenDB(path, bucketCreds)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("deoss/gateway/s3-secrets/v1\n"), seed...))
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Keys{db: db, aead: aead, now: time.Now}, nil
}

// Close closes the store.
func (k *Keys) Close() error { return k.db.Close() }

var accessAlphabet = base32.StdEncoding.WithPadding(base32.NoPadding)

// Create issues a credential for owner, with territory as its default.
func (k *Keys) Create(owner types.Address, territory string) (*Credential, error) {
	var id [11]byte
	var secret [30]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	c := Credential{AccessKey: "DO" + accessAlphabet.EncodeToString(id[:])[:18], Secret: base64.RawURLEncoding.EncodeToString(secret[:]),
		Owner: owner, Territory: territory, Created: k.now().UTC().Truncate(time.Second)}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	st := storedKey{Credential: c, Sealed: k.aead.Seal(nonce, nonce, []byte(c.Secret), []byte(c.AccessKey))}
	st.Secret = ""
	err := k.db.Update(func(tx *bolt.Tx) error {
		if n := len(k.list(tx, owner)); n >= MaxKeysPerAccount {
			return ErrTooManyKeys
		}
		v, err := json.Marshal(st)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCreds).Put([]byte(c.AccessKey), v)
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func (k *Keys) get(tx *bolt.Tx, access string) (*storedKey, error) {
	v := tx.Bucket(bucketCreds).Get([]byte(access))
	if v == nil {
		return nil, ErrNoCredential
	}
	var st storedKey
	return &st, json.Unmarshal(v, &st)
}

func (k *Keys) list(tx *bolt.Tx, owner types.Address) []Credential {
	var out []Credential
	_ = tx.Bucket(bucketCreds).ForEach(func(_, v []byte) error {
		var st storedKey
		if json.Unmarshal(v, &st) == nil && st.Owner == owner {
			out = append(out, st.Credential)
		}
		return nil
	})
	return out
}

// List returns an account's credentials, without secrets, oldest first.
func (k *Keys) List(owner types.Address) ([]Credential, error) {
	var out []Credential
	err := k.db.View(func(tx *bolt.Tx) error { out = k.list(tx, owner); return nil })
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	if out == nil {
		out = []Credential{}
	}
	return out, err
}

// Revoke deletes one of owner's credentials.
func (k *Keys) Revoke(owner types.Address, access string) error {
	return k.db.Update(func(tx *bolt.Tx) error {
		st, err := k.get(tx, access)
		if err != nil {
			return err
		}
		if st.Owner != owner {
			return ErrNoCredential // another account's key is not named to it
		}
		return tx.Bucket(bucketCreds).Delete([]byte(access))
	})
}

// Lookup returns a credential with its secret opened.
func (k *Keys) Lookup(access string) (*Credential, error) {
	var st *storedKey
	err := k.db.View(func(tx *bolt.Tx) error {
		var err error
		st, err = k.get(tx, access)
		return err
	})
	if err != nil {
		return nil, err
	}
	ns := k.aead.NonceSize()
	if len(st.Sealed) < ns {
		return nil, fmt.Errorf("credential %s: sealed secret too short", access)
	}
	secret, err := k.aead.Open(nil, st.Sealed[:ns], st.Sealed[ns:], []byte(access))
	if err != nil {
		return nil, fmt.Errorf("credential %s does not open with this gateway's key: %w", access, err)
	}
	c := st.Credential
	c.Secret = string(secret)
	return &c, nil
}

// Secret implements sigv4.Secrets.
func (k *Keys) Secret(access string) (string, error) {
	c, err := k.Lookup(access)
	if errors.Is(err, ErrNoCredential) {
		return "", sigv4.ErrUnknownKey
	}
	if err != nil {
		return "", err
	}
	return c.Secret, nil
}
