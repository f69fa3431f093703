package alexa

// RetryAfter exposes retryAfter to the tests of package alexa_test.
var RetryAfter = retryAfter
