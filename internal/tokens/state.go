package tokens

// State is where a link stands with Login with Amazon.
type State int

// The states of a link.
const (
	// StateLinked means the stored refresh token is believed good.
	StateLinked State = iota + 1
	// StateRelinkRequired means LWA refused the refresh token (invalid_grant) or a
	// rotated token was lost: no LWA call is made for the user until Alexa hands
	// over a new authorization code.
	StateRelinkRequired
)

// String returns the state's wire name, as the contract spells it.
func (s State) String() string {
	switch s {
	case StateLinked:
		return "LINKED"
	case StateRelinkRequired:
		return "RELINK_REQUIRED"
	}
	return "UNKNOWN"
}

// Validate returns an EINVALID error when s is none of the states above.
func (s State) Validate() error {
	if s != StateLinked && s != StateRelinkRequired {
		return Errorf(EINVALID, "unknown link state %d", s)
	}
	return nil
}

// ParseState returns the state whose wire name is name, as String spells it, or
// an EINVALID error for any other name. Stores keep states by name, so that
// renumbering State cannot change stored links.
func ParseState(name string) (State, error) {
	for _, s := range []State{StateLinked, StateRelinkRequired} {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, Errorf(EINVALID, "unknown link state %q", name)
}
