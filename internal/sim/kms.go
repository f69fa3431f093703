package sim

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"sync"
)

// DefaultKMSKeyID is the one master key a KMS simulator holds when
// KMSOptions.KeyIDs is empty.
const DefaultKMSKeyID = "11111111-2222-3333-4444-555555555555"

// kmsMaxBody is the largest request body the KMS simulator reads.
const kmsMaxBody = 64 << 10

// kmsBlobVersion is the first byte of the simulator's CiphertextBlobs.
const kmsBlobVersion byte = 1

// KMSOptions configures a KMS simulator. The zero value is usable.
type KMSOptions struct {
	// Addr is the address Start listens on. It must be a loopback address;
	// empty means "127.0.0.1:0", a free port.
	Addr string
	// KeyIDs are the master keys the simulator holds, each under a fresh
	// random AES-256 key and matched exactly as written (no ARNs or aliases are
	// resolved); empty means one key, DefaultKMSKeyID.
	KeyIDs []string
}

// KMSStats counts the requests a KMS simulator served.
type KMSStats struct {
	// Requests counts every request, failed, faulted and malformed ones
	// included.
	Requests int
	// GenerateDataKey and Decrypt count the requests for each operation,
	// whatever their answer.
	GenerateDataKey int
	Decrypt         int
}

// KMS simulates the two operations of AWS KMS that envelope encryption uses,
// GenerateDataKey and Decrypt, over the AWS JSON 1.1 protocol that the AWS SDK
// speaks: POST / with X-Amz-Target: TrentService.<operation>, content type
// application/x-amz-json-1.1, binary fields in base64, and errors as
// {"__type":"NotFoundException","message":"…"}. The SDK's kms.Client talks to it
// when its BaseEndpoint is URL().
//
// Master keys never leave the simulator. A CiphertextBlob is the version byte 1,
// the master key id (2-byte big-endian length, then the id), a 12-byte nonce and
// the AES-256-GCM encryption of the data key, with the key id and the
// encryption context as additional data: Decrypt finds the master key without a
// KeyId, answers IncorrectKeyException when a KeyId is given and differs,
// and InvalidCiphertextException for a blob altered, truncated or decrypted
// under another encryption context.
//
// The simulator does not check SigV4 signatures or credentials, and knows no
// key policies, grants, aliases or key states. KMS is an http.Handler; Start
// serves it on a loopback port. Its methods are safe for concurrent use.
type KMS struct {
	opts KMSOptions
	keys map[string]cipher.AEAD // master keys by id; never changed after NewKMS

	mu     sync.Mutex
	faults faultQueue
	stats  KMSStats

	server server
}

var _ http.Handler = (*KMS)(nil)

// NewKMS returns a KMS simulator configured by opts, with a fresh random master
// key for each key id. It does not listen until Start is called; as an
// http.Handler it can also be mounted elsewhere. It panics when the system's
// random source fails.
func NewKMS(opts KMSOptions) *KMS {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if len(opts.KeyIDs) == 0 {
		opts.KeyIDs = []string{DefaultKMSKeyID}
	}
	opts.KeyIDs = slices.Clone(opts.KeyIDs)
	k := &KMS{opts: opts, keys: make(map[string]cipher.AEAD, len(opts.KeyIDs))}
	for _, id := range opts.KeyIDs {
		var b [32]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
		block, err := aes.NewCipher(b[:])
		if err != nil {
			panic(fmt.Sprintf("sim: kms: %v", err))
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			panic(fmt.Sprintf("sim: kms: %v", err))
		}
		k.keys[id] = aead
	}
	return k
}

// KeyIDs returns the ids of the master keys the simulator holds.
func (k *KMS) KeyIDs() []string { return slices.Clone(k.opts.KeyIDs) }

// Start listens on the configured loopback address and serves KMS in the
// background until Close is called or ctx is done; in-flight requests see their
// context cancelled then. It returns an error when the address is not a
// loopback address, cannot be listened on, or the simulator was already started.
func (k *KMS) Start(ctx context.Context) error {
	return k.server.start(ctx, "kms", k.opts.Addr, k)
}

// URL returns the simulator's base URL, such as "http://127.0.0.1:41234", or ""
// before Start: the endpoint to give the SDK (BaseEndpoint) or the broker
// (BROKER_KMS_ENDPOINT).
func (k *KMS) URL() string { return k.server.url() }

// Close stops the server started by Start: it cancels in-flight requests, waits
// for their handlers to return, and closes the listener. Calling Close more than
// once, or without Start, is harmless; it always returns nil.
func (k *KMS) Close() error {
	k.server.close()
	return nil
}

// FailNext makes the next n requests fail with HTTP status: 429 and 400 answer
// ThrottlingException, 5xx KMSInternalException, any other status
// a KMSInvalidStateException. Failures queue behind those injected earlier.
func (k *KMS) FailNext(n, status int) { k.faults.add(n, status, 0) }

// ClearFaults removes pending injected failures.
func (k *KMS) ClearFaults() { k.faults.clear() }

// Stats returns a snapshot of the request counters.
func (k *KMS) Stats() KMSStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stats
}

// kmsTargetPrefix starts the X-Amz-Target header of every KMS operation.
const kmsTargetPrefix = "TrentService."

// ServeHTTP answers POST / as AWS KMS does for GenerateDataKey and Decrypt, an
// UnknownOperationException for any other operation, and 404 on any other path.
func (k *KMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	k.mu.Lock()
	k.stats.Requests++
	switch target {
	case kmsTargetPrefix + "GenerateDataKey":
		k.stats.GenerateDataKey++
	case kmsTargetPrefix + "Decrypt":
		k.stats.Decrypt++
	}
	k.mu.Unlock()
	if !k.faults.wait(r.Context()) {
		return
	}
	if f, ok := k.faults.next(); ok {
		switch {
		case f.status == http.StatusTooManyRequests || f.status == http.StatusBadRequest:
			kmsError(w, f.status, "ThrottlingException", "Rate exceeded (simulated)")
		case f.status >= 500:
			kmsError(w, f.status, "KMSInternalException", "internal failure (simulated)")
		default:
			kmsError(w, f.status, "KMSInvalidStateException", "injected failure (simulated)")
		}
		return
	}
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		kmsError(w, http.StatusMethodNotAllowed, "UnsupportedOperationException", "the method must be POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-amz-json-1.1" {
		kmsError(w, http.StatusBadRequest, "SerializationException", "the content type must be application/x-amz-json-1.1")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, kmsMaxBody))
	if err != nil {
		kmsError(w, http.StatusBadRequest, "SerializationException", "the body cannot be read or is too large")
		return
	}
	switch target {
	case kmsTargetPrefix + "GenerateDataKey":
		k.generateDataKey(w, body)
	case kmsTargetPrefix + "Decrypt":
		k.decrypt(w, body)
	default:
		kmsError(w, http.StatusBadRequest, "UnknownOperationException", "the simulator knows GenerateDataKey and Decrypt only")
	}
}

// kmsGenerateDataKeyRequest is GenerateDataKey's request; []byte fields are
// base64 in JSON, as in the protocol.
type kmsGenerateDataKeyRequest struct {
	KeyId             string
	KeySpec           string
	NumberOfBytes     *int
	EncryptionContext map[string]string
}

// kmsDecryptRequest is Decrypt's request.
type kmsDecryptRequest struct {
	CiphertextBlob    []byte
	KeyId             string
	EncryptionContext map[string]string
}

func (k *KMS) generateDataKey(w http.ResponseWriter, body []byte) {
	var req kmsGenerateDataKeyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		kmsError(w, http.StatusBadRequest, "SerializationException", "the body is not a GenerateDataKey request")
		return
	}
	if req.KeyId == "" {
		kmsError(w, http.StatusBadRequest, "ValidationException", "KeyId is required")
		return
	}
	aead, ok := k.keys[req.KeyId]
	if !ok {
		kmsError(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", req.KeyId))
		return
	}
	var n int
	switch {
	case req.KeySpec != "" && req.NumberOfBytes != nil:
		kmsError(w, http.StatusBadRequest, "ValidationException", "give KeySpec or NumberOfBytes, not both")
		return
	case req.KeySpec == "AES_256":
		n = 32
	case req.KeySpec == "AES_128":
		n = 16
	case req.KeySpec != "":
		kmsError(w, http.StatusBadRequest, "ValidationException", "KeySpec must be AES_256 or AES_128")
		return
	case req.NumberOfBytes != nil && *req.NumberOfBytes >= 1 && *req.NumberOfBytes <= 1024:
		n = *req.NumberOfBytes
	default:
		kmsError(w, http.StatusBadRequest, "ValidationException", "KeySpec or NumberOfBytes (1 to 1024) is required")
		return
	}
	plaintext := make([]byte, n)
	_, _ = rand.Read(plaintext)
	blob := make([]byte, 0, 1+2+len(req.KeyId)+12+n+16)
	blob = append(blob, kmsBlobVersion)
	blob = binary.BigEndian.AppendUint16(blob, uint16(len(req.KeyId)))
	blob = append(blob, req.KeyId...)
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	blob = append(blob, nonce...)
	blob = aead.Seal(blob, nonce, plaintext, kmsAdditionalData(req.KeyId, req.EncryptionContext))
	kmsReply(w, map[string]any{"CiphertextBlob": blob, "KeyId": req.KeyId, "Plaintext": plaintext})
}

func (k *KMS) decrypt(w http.ResponseWriter, body []byte) {
	var req kmsDecryptRequest
	if err := json.Unmarshal(body, &req); err != nil {
		kmsError(w, http.StatusBadRequest, "SerializationException", "the body is not a Decrypt request")
		return
	}
	const invalid = "the ciphertext is invalid, or was encrypted under another key or encryption context"
	blob := req.CiphertextBlob
	if len(blob) < 3 || blob[0] != kmsBlobVersion {
		kmsError(w, http.StatusBadRequest, "InvalidCiphertextException", invalid)
		return
	}
	idLen := int(binary.BigEndian.Uint16(blob[1:3]))
	if len(blob) < 3+idLen+12+16 {
		kmsError(w, http.StatusBadRequest, "InvalidCiphertextException", invalid)
		return
	}
	keyID := string(blob[3 : 3+idLen])
	aead, ok := k.keys[keyID]
	if !ok {
		kmsError(w, http.StatusBadRequest, "InvalidCiphertextException", invalid)
		return
	}
	if req.KeyId != "" && req.KeyId != keyID {
		kmsError(w, http.StatusBadRequest, "IncorrectKeyException", "the ciphertext was not encrypted under the KMS key in KeyId")
		return
	}
	rest := blob[3+idLen:]
	plaintext, err := aead.Open(nil, rest[:12], rest[12:], kmsAdditionalData(keyID, req.EncryptionContext))
	if err != nil {
		kmsError(w, http.StatusBadRequest, "InvalidCiphertextException", invalid)
		return
	}
	kmsReply(w, map[string]any{"KeyId": keyID, "Plaintext": plaintext, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

// kmsAdditionalData binds a blob to its master key id and encryption context,
// each string prefixed with its length, the context's pairs in key order.
func kmsAdditionalData(keyID string, ec map[string]string) []byte {
	ad := binary.BigEndian.AppendUint32(nil, uint32(len(keyID)))
	ad = append(ad, keyID...)
	keys := make([]string, 0, len(ec))
	for key := range ec {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(key)))
		ad = append(ad, key...)
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(ec[key])))
		ad = append(ad, ec[key]...)
	}
	return ad
}

// kmsReply writes a 200 answer in the JSON 1.1 protocol; []byte values become
// base64.
func kmsReply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	writeJSON(w, http.StatusOK, v)
}

// kmsError writes an error answer in the JSON 1.1 protocol, which the SDK reads
// by its __type.
func kmsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	writeJSON(w, status, map[string]string{"__type": typ, "message": msg})
}
