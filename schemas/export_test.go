package schemas

// FastValid exposes the fast path's verdict to the external tests.
func (v *Validator) FastValid(event []byte) bool {
	for _, fc := range v.fast {
		if fc.valid(event) {
			return true
		}
	}
	return false
}

// LibraryValidate exposes the library's verdict to the external tests.
func (v *Validator) LibraryValidate(event []byte) error { return v.validateLibrary(event) }

// AppendPayload and AppendEnvelope expose the appenders (encode.go).
func AppendPayload(p Payload) ([]byte, bool)   { return appendPayload(nil, p) }
func AppendEnvelope(e Envelope) ([]byte, bool) { return appendEnvelope(nil, &e) }

// ClassMatch tells whether pattern is read as one character class over the
// whole string (classOnly) and, if so, whether s meets it (inClass).
func ClassMatch(pattern, s string) (isClass, match bool) {
	c := classOnly(pattern)
	return c != nil, c != nil && inClass(c, []byte(s))
}
