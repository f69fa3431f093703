package tokens

import (
	"encoding/binary"
	"fmt"
)

// tokensFormat is the first byte of the plaintext that Link.Tokens seals; the
// access and refresh tokens follow, each as uvarint-length-prefixed bytes. A
// binary form, since it is opened on every partner-token call.
const tokensFormat byte = 1

// seal encodes g's access and refresh tokens as plaintext and seals it for
// userID in the Service's skill; the plaintext is cleared before seal returns.
func (s *Service) seal(userID string, g Grant) (Sealed, error) {
	a, r := g.AccessToken.Reveal(), g.RefreshToken.Reveal()
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(a)+len(r))
	b = append(b, tokensFormat)
	b = append(binary.AppendUvarint(b, uint64(len(a))), a...)
	b = append(binary.AppendUvarint(b, uint64(len(r))), r...)
	sealed, err := s.sealer.Seal(SealSubject(s.SkillID, userID), b)
	clear(b)
	if err != nil {
		return Sealed{}, fmt.Errorf("seal tokens: %w", err)
	}
	return sealed, nil
}

// open opens l's sealed tokens and returns them as a grant that expires when l's
// access token does. It returns an EINTERNAL error when the plaintext is not in
// tokensFormat or is truncated, and the sealer's errors as they are.
func (s *Service) open(l *Link) (Grant, error) {
	b, err := s.sealer.Open(SealSubject(s.SkillID, l.UserID), l.Tokens)
	if err != nil {
		return Grant{}, fmt.Errorf("open tokens of link: %w", err)
	}
	defer clear(b)
	if len(b) == 0 || b[0] != tokensFormat {
		return Grant{}, Errorf(EINTERNAL, "sealed tokens have an unknown format")
	}
	var fields [2]string
	rest := b[1:]
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return Grant{}, Errorf(EINTERNAL, "sealed tokens are truncated")
		}
		fields[i], rest = string(rest[k:k+int(n)]), rest[k+int(n):]
	}
	return Grant{AccessToken: Secret(fields[0]), RefreshToken: Secret(fields[1]), Expiry: l.AccessTokenExpiresAt}, nil
}
