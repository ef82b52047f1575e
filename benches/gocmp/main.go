// gocmp encrypts or decrypts one stored value from stdin to stdout with the
// aescbc code path kube-apiserver runs (Go's crypto/aes + crypto/cipher CBC,
// random IV, PKCS#7, prefix k8s:enc:aescbc:v1:<name>:), for comparison with
// `atrest encrypt` / `atrest decrypt` in benches/compare.sh.
//
// The transform functions follow kubernetes
// staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/aes/aes_cbc.go and the
// prefix handling of value/transformer.go.
//
//	gocmp -keyfile KEY.b64 -name k1 encrypt < plain > stored
//	gocmp -keyfile KEY.b64 -name k1 decrypt < stored > plain
package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func transformToStorage(block cipher.Block, data []byte) ([]byte, error) {
	blockSize := aes.BlockSize
	paddingSize := blockSize - (len(data) % blockSize)
	result := make([]byte, blockSize+len(data)+paddingSize)
	iv := result[:blockSize]
	if _, err := io.ReadFull(rand.Reader, iv); err != nil {
		return nil, errors.New("unable to read sufficient random bytes")
	}
	copy(result[blockSize:], data)
	for i := 0; i < paddingSize; i++ {
		result[blockSize+len(data)+i] = byte(paddingSize)
	}

	mode := cipher.NewCBCEncrypter(block, iv)
	mode.CryptBlocks(result[blockSize:], result[blockSize:])
	return result, nil
}

func transformFromStorage(block cipher.Block, data []byte) ([]byte, error) {
	blockSize := aes.BlockSize
	if len(data) < blockSize {
		return nil, errors.New("the stored data was shorter than the required size")
	}
	iv := data[:blockSize]
	data = data[blockSize:]
	if len(data)%blockSize != 0 {
		return nil, errors.New("the stored data is not a multiple of the block size")
	}
	if len(data) == 0 {
		return nil, errors.New("the stored data has an IV but no ciphertext")
	}
	result := make([]byte, len(data))
	copy(result, data)
	mode := cipher.NewCBCDecrypter(block, iv)
	mode.CryptBlocks(result, result)
	c := result[len(result)-1]
	paddingSize := int(c)
	size := len(result) - paddingSize
	if paddingSize == 0 || paddingSize > len(result) {
		return nil, errors.New("invalid PKCS7 data (empty or not padded)")
	}
	for i := 0; i < paddingSize; i++ {
		if result[size+i] != c {
			return nil, errors.New("invalid padding on input")
		}
	}
	return result[:size], nil
}

// readStdin reads all of stdin, sized up front when it is a regular file.
func readStdin() ([]byte, error) {
	if st, err := os.Stdin.Stat(); err == nil && st.Mode().IsRegular() {
		buf := make([]byte, st.Size())
		_, err := io.ReadFull(os.Stdin, buf)
		return buf, err
	}
	return io.ReadAll(os.Stdin)
}

func main() {
	keyfile := flag.String("keyfile", "", "file with the base64 key (16, 24 or 32 bytes)")
	name := flag.String("name", "", "key name in the prefix")
	flag.Parse()
	if flag.NArg() != 1 || *keyfile == "" || *name == "" {
		fmt.Fprintln(os.Stderr, "usage: gocmp -keyfile FILE -name NAME encrypt|decrypt < in > out")
		os.Exit(2)
	}
	text, err := os.ReadFile(*keyfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "key is not base64:", err)
		os.Exit(2)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	prefix := []byte("k8s:enc:aescbc:v1:" + *name + ":")
	in, err := readStdin()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read stdin:", err)
		os.Exit(2)
	}
	var out []byte
	switch flag.Arg(0) {
	case "encrypt":
		ct, err := transformToStorage(block, in)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// value.PrefixTransformer: append(prefix, result...)
		out = append(append(make([]byte, 0, len(prefix)+len(ct)), prefix...), ct...)
	case "decrypt":
		if !bytes.HasPrefix(in, prefix) {
			fmt.Fprintln(os.Stderr, "value does not have prefix", string(prefix))
			os.Exit(1)
		}
		out, err = transformFromStorage(block, in[len(prefix):])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", flag.Arg(0))
		os.Exit(2)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "cannot write stdout:", err)
		os.Exit(2)
	}
}
