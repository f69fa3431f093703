package smarthome

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Path is the route of the Handler: the server mounts it as
// "POST " + Path, or as Path to have the Handler answer other methods 405.
const Path = "/v1/smart-home/accept-grant"

// SkillResolver returns the skill that skillID names: the ?skill_id= of the
// request, "" when there is none. Its error's message must name skill_id and
// be fit for the caller (the message of a *tokens.Error, or else the error's
// text, is shown); the Handler answers it 400.
type SkillResolver func(skillID string) (reciprocal.Skill, error)

// Handler serves POST Path: the AcceptGrant directive that a skill's Lambda
// forwards as JSON, with an optional ?skill_id=, answered with the Result of
// Service.AcceptGrant. It is safe for concurrent use.
type Handler struct {
	service *Service
	skills  SkillResolver
}

// NewHandler returns the route's HTTP handler: skills finds the skill a
// request names, and s carries out the directive.
func NewHandler(s *Service, skills SkillResolver) *Handler {
	return &Handler{service: s, skills: skills}
}

// ServeHTTP reads the directive (at most MaxBody bytes of JSON; the content
// type is not checked, as the gateway does not check it either), resolves the
// skill, and answers with the Result of Service.AcceptGrant. A method other
// than POST is answered 405 with Allow: POST; a skill_id given twice, a body
// that cannot be read or is over MaxBody bytes, and a skill_id that names no
// skill are answered 400. Every answer is Alexa's JSON, with Cache-Control:
// no-store; a 429 carries Retry-After in seconds.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		res := ErrorResult(tokens.Errorf(tokens.EINVALID, "use POST"))
		res.Status = http.StatusMethodNotAllowed
		write(w, res)
		return
	}
	query := r.URL.Query()
	if len(query["skill_id"]) > 1 {
		write(w, h.service.fail(ctx, reciprocal.Skill{}, tokens.Errorf(tokens.EINVALID, "skill_id is repeated")))
		return
	}
	skillID := query.Get("skill_id")
	skill, err := h.skills(skillID)
	if err != nil {
		var te *tokens.Error
		if !errors.As(err, &te) || te.Code != tokens.EINVALID {
			err = &tokens.Error{Code: tokens.EINVALID, Message: skillMessage(err)}
		}
		write(w, h.service.fail(ctx, reciprocal.Skill{ID: skillID}, err))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		msg := "cannot read the body"
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			msg = "the directive is larger than 64 KiB"
		}
		write(w, h.service.fail(ctx, skill, tokens.Errorf(tokens.EINVALID, "%s", msg)))
		return
	}
	write(w, h.service.AcceptGrant(ctx, skill, body))
}

// skillMessage returns what the caller is told of a SkillResolver's error.
func skillMessage(err error) string {
	var te *tokens.Error
	if errors.As(err, &te) {
		return te.Message
	}
	return err.Error()
}

// write sends res.
func write(w http.ResponseWriter, res Result) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json;charset=UTF-8")
	if res.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(res.RetryAfter/time.Second)))
	}
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
}
