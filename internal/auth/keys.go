package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// minRSABits is the size of the smallest RSA key a verifier trusts.
const minRSABits = 2048

// loadPublicKey reads the PEM file at path and returns its public key and the
// signing algorithms that key may verify.
func loadPublicKey(path string) (any, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: read public key file: %w", err)
	}
	key, methods, err := parsePublicKeyPEM(data)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: public key file %s: %w", path, err)
	}
	return key, methods, nil
}

// parsePublicKeyPEM returns the public key of the first PEM block in data, a
// public key or a certificate, with the signing algorithms it may verify.
func parsePublicKeyPEM(data []byte) (any, []string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New("no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, nil, fmt.Errorf("PEM block %q is a private key; give the public key", block.Type)
		}
		return nil, nil, fmt.Errorf("PEM block %q is neither a public key nor a certificate", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("parse PEM block %q: %w", block.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return nil, nil, fmt.Errorf("RSA key has %d bits, want at least %d", n, minRSABits)
		}
		return k, []string{"RS256", "PS256"}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, nil, fmt.Errorf("ECDSA key is on curve %s, want P-256 (ES256)", k.Curve.Params().Name)
		}
		return k, []string{"ES256"}, nil
	case ed25519.PublicKey:
		return k, []string{"EdDSA"}, nil
	}
	return nil, nil, fmt.Errorf("unsupported public key type %T", pub)
}
