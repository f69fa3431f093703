package config

// BoolFlags returns the flag names of the true-or-false settings, in the
// order of the settings table.
func BoolFlags() []string {
	var flags []string
	for _, s := range settings {
		if s.boolean {
			flags = append(flags, s.flag)
		}
	}
	return flags
}
