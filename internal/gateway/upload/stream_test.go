package upload

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// TestStreams: a stream takes bytes at its offset only, keeps what a
// failed request delivered, survives a reopen, refuses bytes past its size
// and strangers; a deferred size is declared once; a final stream reads
// its complete partials in order and refuses incomplete ones or another
// owner's.
func TestStreams(t *testing.T) {
	root := t.TempDir()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s := open(t, root, c)
	data := bytes.Repeat([]byte("0123456789"), 300)
	sess, err := s.CreateStream(Spec{Owner: alice, Name: "f", Territory: "home", Size: int64(len(data))}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Append(ctx, sess.ID, alice, 0, bytes.NewReader(data[:1000]), nil); n != 1000 || err != nil {
		t.Fatal(n, err)
	}
	if _, err := s.Append(ctx, sess.ID, alice, 500, bytes.NewReader(data[500:]), nil); !errors.Is(err, ErrOffset) {
		t.Fatalf("a wrong offset: %v", err)
	}
	if _, err := s.Append(ctx, sess.ID, bob, 1000, bytes.NewReader(data[1000:]), nil); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a stranger's bytes: %v", err)
	}
	// A dropped connection: the bytes that came are kept.
	cut := io.MultiReader(bytes.NewReader(data[1000:1700]), iotest.ErrReader(io.ErrUnexpectedEOF))
	// A body that does not verify (its signed hash) is not kept.
	bad := errors.New("body does not match its signature")
	if n, err := s.Append(ctx, sess.ID, alice, 1000, bytes.NewReader(data[1000:1500]), func() error { return bad }); n != 0 || !errors.Is(err, bad) {
		t.Fatalf("an unverified body: %d bytes kept, %v", n, err)
	}
	if n, err := s.Append(ctx, sess.ID, alice, 1000, cut, nil); n != 700 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(n, err)
	}
	if _, _, err := s.StreamReader(sess.ID, alice); !errors.Is(err, ErrNotReady) {
		t.Fatalf("an incomplete stream read: %v", err)
	}
	s.Close()
	s = open(t, root, c)
	defer s.Close()
	got, _ := s.Stream(sess.ID, alice)
	if got.Offset != 1700 {
		t.Fatalf("offset %d after a reopen, want 1700", got.Offset)
	}
	if _, err := s.Append(ctx, sess.ID, alice, 1700, bytes.NewReader(append(bytes.Clone(data[1700:]), 'x')), nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("a byte past the size: %v", err)
	}
	rc, _, err := s.StreamReader(sess.ID, alice)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, data) {
		t.Fatal("the stream reads back wrong")
	}

	// Deferred size, partials and a final one.
	var parts []string
	for i := range 3 {
		p, err := s.CreateStream(Spec{Owner: alice, Name: "p", Territory: "home", Size: -1, Partial: true}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		chunk := data[i*1000 : (i+1)*1000]
		if _, err := s.Append(ctx, p.ID, alice, 0, bytes.NewReader(chunk), nil); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := s.DeclareSize(p.ID, alice, 999); err == nil {
				t.Fatal("a size below what the stream holds")
			}
			if err := s.DeclareSize(p.ID, alice, 1000); err != nil {
				t.Fatal(err)
			}
			if err := s.DeclareSize(p.ID, alice, 1000); err == nil {
				t.Fatal("a size declared twice")
			}
		}
		parts = append(parts, p.ID)
	}
	if _, err := s.CreateStream(Spec{Owner: alice, Name: "f"}, nil, parts); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a final of an incomplete partial: %v", err)
	}
	if err := s.DeclareSize(parts[2], alice, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateStream(Spec{Owner: bob, Name: "f"}, nil, parts); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob's final of alice's partials: %v", err)
	}
	final, err := s.CreateStream(Spec{Owner: alice, Name: "f", Territory: "home"}, nil, []string{parts[2], parts[0], parts[1]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, final.ID, alice, final.Offset, bytes.NewReader([]byte("x")), nil); err == nil {
		t.Fatal("bytes appended to a final upload")
	}
	rc, f, err := s.StreamReader(final.ID, alice)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rc)
	rc.Close()
	want := append(append(bytes.Clone(data[2000:3000]), data[:1000]...), data[1000:2000]...)
	if f.Spec.Size != 3000 || !bytes.Equal(b, want) {
		t.Fatalf("the final upload reads %d bytes, not its partials in order", len(b))
	}
	if _, err := s.State(final.ID, alice); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a stream on the chunk routes: %v", err)
	}
}
