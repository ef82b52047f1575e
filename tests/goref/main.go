// goref is an independent reference for atrest's interoperability tests: it
// seals and opens one stored value with Go's standard crypto packages and
// golang.org/x/crypto/nacl/secretbox, the libraries kube-apiserver itself uses,
// in the stored-value layouts of kube-apiserver's aescbc, aesgcm and secretbox
// providers (k8s:enc:<provider>:v1:<key name>: followed by the payload).
//
//	goref -provider aescbc -name key1 -key BASE64 -etcd-key /registry/secrets/ns/n seal < plain > stored
//	goref -provider aescbc -name key1 -key BASE64 -etcd-key /registry/secrets/ns/n open < stored > plain
package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/nacl/secretbox"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "goref: "+format+"\n", args...)
	os.Exit(1)
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		fail("rng: %v", err)
	}
	return b
}

// cbcSeal: IV, then CBC over the value padded with PKCS#7 (1 to 16 bytes).
func cbcSeal(key, value []byte) []byte {
	blk, err := aes.NewCipher(key)
	if err != nil {
		fail("%v", err)
	}
	pad := aes.BlockSize - len(value)%aes.BlockSize
	body := append(append([]byte{}, value...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	iv := random(aes.BlockSize)
	cipher.NewCBCEncrypter(blk, iv).CryptBlocks(body, body)
	return append(iv, body...)
}

// cbcOpen: the checks kube-apiserver makes, in its order.
func cbcOpen(key, stored []byte) []byte {
	blk, err := aes.NewCipher(key)
	if err != nil {
		fail("%v", err)
	}
	if len(stored) < aes.BlockSize {
		fail("shorter than the IV")
	}
	iv, body := stored[:aes.BlockSize], append([]byte{}, stored[aes.BlockSize:]...)
	if len(body) == 0 || len(body)%aes.BlockSize != 0 {
		fail("not whole blocks")
	}
	cipher.NewCBCDecrypter(blk, iv).CryptBlocks(body, body)
	pad := int(body[len(body)-1])
	if pad == 0 || pad > len(body) {
		fail("bad padding length")
	}
	for _, b := range body[len(body)-pad:] {
		if int(b) != pad {
			fail("bad padding bytes")
		}
	}
	return body[:len(body)-pad]
}

func gcm(key []byte) cipher.AEAD {
	blk, err := aes.NewCipher(key)
	if err != nil {
		fail("%v", err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		fail("%v", err)
	}
	return g
}

// readInput reads stdin in one allocation when it is a regular file (the
// benchmark's case), so that Go is not measured growing a buffer.
func readInput() ([]byte, error) {
	if st, err := os.Stdin.Stat(); err == nil && st.Mode().IsRegular() {
		buf := make([]byte, st.Size())
		_, err := io.ReadFull(os.Stdin, buf)
		return buf, err
	}
	return io.ReadAll(os.Stdin)
}

func main() {
	provider := flag.String("provider", "aescbc", "aescbc, aesgcm or secretbox")
	name := flag.String("name", "key1", "key name in the prefix")
	keyB64 := flag.String("key", "", "key, base64")
	etcdKey := flag.String("etcd-key", "", "etcd key (aesgcm authenticates it)")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: goref [flags] seal|open")
	}
	key, err := base64.StdEncoding.DecodeString(*keyB64)
	if err != nil {
		fail("key: %v", err)
	}
	in, err := readInput()
	if err != nil {
		fail("stdin: %v", err)
	}
	prefix := []byte("k8s:enc:" + *provider + ":v1:" + *name + ":")
	var out []byte
	switch flag.Arg(0) {
	case "seal":
		var payload []byte
		switch *provider {
		case "aescbc":
			payload = cbcSeal(key, in)
		case "aesgcm":
			g := gcm(key)
			nonce := random(g.NonceSize())
			payload = g.Seal(nonce, nonce, in, []byte(*etcdKey))
		case "secretbox":
			var k [32]byte
			var n [24]byte
			if len(key) != 32 {
				fail("secretbox key must be 32 bytes")
			}
			copy(k[:], key)
			copy(n[:], random(24))
			payload = secretbox.Seal(n[:], in, &n, &k)
		default:
			fail("unknown provider %q", *provider)
		}
		out = append(prefix, payload...)
	case "open":
		if !bytes.HasPrefix(in, prefix) {
			fail("value does not start with %q", prefix)
		}
		payload := in[len(prefix):]
		switch *provider {
		case "aescbc":
			out = cbcOpen(key, payload)
		case "aesgcm":
			g := gcm(key)
			if len(payload) < g.NonceSize() {
				fail("shorter than the nonce")
			}
			out, err = g.Open(nil, payload[:g.NonceSize()], payload[g.NonceSize():], []byte(*etcdKey))
			if err != nil {
				fail("%v", err)
			}
		case "secretbox":
			var k [32]byte
			var n [24]byte
			if len(key) != 32 || len(payload) < 24+secretbox.Overhead {
				fail("bad key or short value")
			}
			copy(k[:], key)
			copy(n[:], payload[:24])
			var ok bool
			out, ok = secretbox.Open(nil, payload[24:], &n, &k)
			if !ok {
				fail("secretbox authentication failed")
			}
		default:
			fail("unknown provider %q", *provider)
		}
	default:
		fail("usage: goref [flags] seal|open")
	}
	os.Stdout.Write(out)
}
