package emulator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// validName is the charset of secret names.
var validName = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)

// validFilterValue is the model's pattern for ListSecrets filter values.
var validFilterValue = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)

// rateExpression is the rotation schedule form the emulator understands.
var rateExpression = regexp.MustCompile(`^rate\((\d+) (hours?|days?)\)$`)

// cronExpression is accepted as a schedule without computing its next date.
var cronExpression = regexp.MustCompile(`^cron\(.+\)$`)

// parseRate turns "rate(N days)" or "rate(N hours)" into a duration.
func parseRate(expr string) (time.Duration, bool) {
	m := rateExpression.FindStringSubmatch(expr)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0, false
	}
	if m[2][0] == 'h' {
		return time.Duration(n) * time.Hour, true
	}
	return time.Duration(n) * 24 * time.Hour, true
}

// checks collects the first model-constraint violation of a request.
type checks struct{ err *Error }

func (c *checks) fail(member, constraint string) {
	if c.err == nil {
		c.err = validationError(member, constraint)
	}
}

// required checks that a member is present.
func (c *checks) required(member string, present bool) {
	if !present {
		c.fail(member, "Member must not be null")
	}
}

// length checks the length of an optional string member.
func (c *checks) length(member string, s *string, minLen, maxLen int) {
	if s == nil {
		return
	}
	c.lengthOf(member, len(*s), minLen, maxLen)
}

func (c *checks) lengthOf(member string, n, minLen, maxLen int) {
	switch {
	case n < minLen:
		c.fail(member, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	case n > maxLen:
		c.fail(member, fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
}

// rangeOf checks an optional integer member.
func (c *checks) rangeOf(member string, v *int64, minV, maxV int64) {
	if v == nil {
		return
	}
	switch {
	case *v < minV:
		c.fail(member, fmt.Sprintf("Member must have value greater than or equal to %d", minV))
	case *v > maxV:
		c.fail(member, fmt.Sprintf("Member must have value less than or equal to %d", maxV))
	}
}

// secretID checks a required SecretId.
func (c *checks) secretID(id *string) {
	c.required("secretId", id != nil)
	c.length("secretId", id, 1, maxSecretIDLen)
}

// token checks an optional ClientRequestToken.
func (c *checks) token(member string, t *string) {
	c.length(member, t, minTokenLen, maxTokenLen)
}

// value checks an optional SecretString and SecretBinary.
func (c *checks) value(str *string, bin []byte) {
	c.length("secretString", str, 1, maxValueBytes)
	if bin != nil {
		c.lengthOf("secretBinary", len(bin), 1, maxValueBytes)
	}
}

// stages checks a list of staging labels.
func (c *checks) stages(member string, labels []string) {
	if labels == nil {
		return
	}
	c.lengthOf(member, len(labels), 1, maxLabelsPerVersion)
	for _, l := range labels {
		c.lengthOf(member+".member", len(l), 1, maxLabelLen)
	}
}

// tags checks a list of tags.
func (c *checks) tags(tags []Tag) {
	for _, t := range tags {
		c.lengthOf("tags.member.key", len(t.Key), 1, maxTagKeyLen)
		c.lengthOf("tags.member.value", len(t.Value), 0, maxTagValueLen)
	}
}

// checkName applies the service's rules for a new secret's name.
func checkName(name string) *Error {
	var c checks
	c.lengthOf("name", len(name), 1, maxNameLen)
	if c.err != nil {
		return c.err
	}
	if !validName.MatchString(name) {
		return newError(ErrValidation, "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	return nil
}

// checkOneValue refuses a request carrying both a string and a binary value.
func checkOneValue(str *string, bin []byte) *Error {
	if str != nil && bin != nil {
		return newError(ErrInvalidParameter, "You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	return nil
}

// mergeTags adds tags to a list, replacing the values of keys already there.
func mergeTags(have, add []Tag) ([]Tag, *Error) {
	out := append([]Tag(nil), have...)
	for _, t := range add {
		replaced := false
		for i := range out {
			if out[i].Key == t.Key {
				out[i].Value = t.Value
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	if len(out) > maxTags {
		return nil, newError(ErrInvalidParameter, "A secret can't have more than %d tags.", maxTags)
	}
	return out, nil
}

// checkRules validates RotationRules.
func checkRules(r *rotationRules) *Error {
	if r == nil {
		return nil
	}
	var c checks
	c.rangeOf("rotationRules.automaticallyAfterDays", r.AutomaticallyAfterDays, 1, 1000)
	c.length("rotationRules.scheduleExpression", r.ScheduleExpression, 1, 256)
	c.length("rotationRules.duration", r.Duration, 2, 3)
	if c.err != nil {
		return c.err
	}
	if r.AutomaticallyAfterDays != nil && r.ScheduleExpression != nil {
		return newError(ErrInvalidParameter, "You can't specify both AutomaticallyAfterDays and ScheduleExpression.")
	}
	if x := r.ScheduleExpression; x != nil && !rateExpression.MatchString(*x) && !cronExpression.MatchString(*x) {
		return newError(ErrInvalidParameter, "The ScheduleExpression must be a rate() or cron() expression.")
	}
	if d := r.Duration; d != nil {
		n, ok := strings.CutSuffix(*d, "h")
		h, err := strconv.Atoi(n)
		if !ok || err != nil || h < 1 || h > 24 {
			return newError(ErrInvalidParameter, "The Duration must be between 1h and 24h.")
		}
	}
	return nil
}
