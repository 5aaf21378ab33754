package tlsutil

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// A dev CA's certificate is trusted by a client given its CA file, and not
// by one without it.
func TestDevCA(t *testing.T) {
	dir := t.TempDir()
	f, err := EnsureDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(f.CA)
	// A second run keeps the set it made.
	if again, err := EnsureDev(dir); err != nil || again != f {
		t.Fatal(err)
	}
	if ca2, _ := os.ReadFile(f.CA); !bytes.Equal(ca, ca2) {
		t.Fatal("the CA was made again")
	}
	if st, err := os.Stat(f.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	srvCfg, err := ServerConfig(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = srvCfg
	srv.StartTLS()
	defer srv.Close()
	cli, err := ClientConfig(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: Transport(cli, 2)}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	resp.Body.Close()
	plain, _ := ClientConfig("")
	if _, err := (&http.Client{Transport: Transport(plain, 2)}).Get(srv.URL); err == nil {
		t.Fatal("a client without the CA trusted the dev certificate")
	}
	if _, err := ClientConfig(f.Key); err == nil {
		t.Fatal("a key file taken as a CA file")
	}
}
