package k8sexec

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors; every error Run returns for a pod outcome matches one of
// them with errors.Is, and carries details in a type for errors.As.
var (
	// ErrNonZeroExit: the script ended with a non-zero exit code (*ExitError).
	ErrNonZeroExit = errors.New("non-zero exit code")
	// ErrOOMKilled: the container was killed for exceeding its memory limit
	// (*ExitError with Reason "OOMKilled").
	ErrOOMKilled = errors.New("out of memory")
	// ErrEvicted: the kubelet evicted the pod, e.g. for ephemeral storage
	// (*EvictedError).
	ErrEvicted = errors.New("pod evicted")
	// ErrDeadlineExceeded: the pod ran longer than Spec.Timeout
	// (*DeadlineExceededError). Not to be confused with
	// context.DeadlineExceeded, which is the caller's own context.
	ErrDeadlineExceeded = errors.New("pod deadline exceeded")
	// ErrImagePull: the image cannot be pulled (*ImagePullError).
	ErrImagePull = errors.New("image pull failed")
	// ErrUnschedulable: the scheduler found no node for the pod
	// (*UnschedulableError).
	ErrUnschedulable = errors.New("pod unschedulable")
	// ErrPodFailed: the pod failed in another way (*PodError): a container
	// that cannot be created, a pod deleted by someone else.
	ErrPodFailed = errors.New("pod failed")
	// ErrInvalidSpec: the Spec cannot be run as given; nothing was created.
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrLogs: the pod's logs could not be read completely (*LogError).
	ErrLogs = errors.New("pod logs incomplete")
)

// ExitError is a container that terminated with a non-zero exit code,
// including one killed for exceeding its memory limit (Reason "OOMKilled",
// usually ExitCode 137).
type ExitError struct {
	Pod         string
	ExitCode    int
	Reason      string // the container's termination reason: "Error", "OOMKilled", ...
	Message     string // the container's termination message, if any
	MemoryLimit string // the memory limit in force, for OOMKilled
}

func (e *ExitError) Error() string {
	if e.OOMKilled() {
		limit := e.MemoryLimit
		if limit == "" {
			limit = "none set"
		}
		return fmt.Sprintf("pod %s: container killed for using more memory than its limit (OOMKilled, exit code %d, memory limit %s); raise the memory limit (--memory)",
			e.Pod, e.ExitCode, limit)
	}
	msg := fmt.Sprintf("pod %s: script exited with code %d", e.Pod, e.ExitCode)
	if e.Message != "" {
		msg += ": " + oneLine(e.Message)
	}
	return msg
}

// OOMKilled reports whether the container was killed for exceeding its
// memory limit.
func (e *ExitError) OOMKilled() bool { return e.Reason == "OOMKilled" }

// Is makes errors.Is(err, ErrNonZeroExit) true, and ErrOOMKilled true for an
// OOM kill.
func (e *ExitError) Is(target error) bool {
	return target == ErrNonZeroExit || (target == ErrOOMKilled && e.OOMKilled())
}

// EvictedError is a pod the kubelet evicted. The common case: writing more
// than the ephemeral-storage limit to local disk (the command then ends with
// exit code 137).
type EvictedError struct {
	Pod string
	// Message is the kubelet's eviction message.
	Message string
	// EphemeralStorage reports an eviction for local ephemeral storage use.
	EphemeralStorage bool
	// EphemeralStorageLimit is the ephemeral-storage limit the pod had.
	EphemeralStorageLimit string
	// ExitCode is the container's exit code when it reported one, else -1.
	ExitCode int
}

func (e *EvictedError) Error() string {
	if e.EphemeralStorage {
		return fmt.Sprintf("pod %s evicted: ephemeral local storage usage exceeds the total limit of containers (limit %s); raise the ephemeral-storage limit (--ephemeral-storage) or write less to local disk",
			e.Pod, e.EphemeralStorageLimit)
	}
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		msg = "no reason given"
	}
	return fmt.Sprintf("pod %s evicted: %s", e.Pod, oneLine(msg))
}

// Is makes errors.Is(err, ErrEvicted) true.
func (e *EvictedError) Is(target error) bool { return target == ErrEvicted }

// DeadlineExceededError is a pod that ran longer than Spec.Timeout (its
// activeDeadlineSeconds) and was stopped by the kubelet.
type DeadlineExceededError struct {
	Pod     string
	Timeout time.Duration
	Message string // the kubelet's message
}

func (e *DeadlineExceededError) Error() string {
	return fmt.Sprintf("pod %s: stopped after running longer than its timeout of %s; raise the timeout (--timeout)", e.Pod, e.Timeout)
}

// Is makes errors.Is(err, ErrDeadlineExceeded) true.
func (e *DeadlineExceededError) Is(target error) bool { return target == ErrDeadlineExceeded }

// ImagePullError is an image the kubelet cannot pull (ErrImagePull,
// ImagePullBackOff, InvalidImageName, ErrImageNeverPull). Run fails on the
// first such report rather than waiting for the kubelet's back-off.
type ImagePullError struct {
	Pod     string
	Image   string
	Reason  string
	Message string
}

func (e *ImagePullError) Error() string {
	msg := fmt.Sprintf("pod %s: cannot pull image %q (%s)", e.Pod, e.Image, e.Reason)
	if e.Message != "" {
		msg += ": " + oneLine(e.Message)
	}
	return msg + "; check the image name and tag, and the registry credentials (imagePullSecrets of the service account)"
}

// Is makes errors.Is(err, ErrImagePull) true.
func (e *ImagePullError) Is(target error) bool { return target == ErrImagePull }

// UnschedulableError is a pod the scheduler could not place; Message is the
// scheduler's reason from the PodScheduled condition.
type UnschedulableError struct {
	Pod     string
	Reason  string // the condition's reason, usually "Unschedulable"
	Message string // e.g. "0/3 nodes are available: 3 Insufficient memory."
}

func (e *UnschedulableError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Reason
	}
	return fmt.Sprintf("pod %s cannot be scheduled: %s", e.Pod, oneLine(msg))
}

// Is makes errors.Is(err, ErrUnschedulable) true.
func (e *UnschedulableError) Is(target error) bool { return target == ErrUnschedulable }

// PodError is any other pod failure: a container the kubelet cannot create
// (CreateContainerConfigError, e.g. a missing Secret key), a pod that failed
// without a container exit code, or a pod deleted by someone else.
type PodError struct {
	Pod     string
	Reason  string
	Message string
}

func (e *PodError) Error() string {
	msg := fmt.Sprintf("pod %s failed: %s", e.Pod, e.Reason)
	if e.Message != "" {
		msg += ": " + oneLine(e.Message)
	}
	return msg
}

// Is makes errors.Is(err, ErrPodFailed) true.
func (e *PodError) Is(target error) bool { return target == ErrPodFailed }

// LogError reports logs that could not be read to the end (the pod itself
// finished). Params printed in the missing part are missing from the
// Result.
type LogError struct {
	Pod string
	Err error
}

func (e *LogError) Error() string {
	return fmt.Sprintf("pod %s: logs incomplete: %v", e.Pod, e.Err)
}

// Unwrap returns the underlying error.
func (e *LogError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrLogs) true.
func (e *LogError) Is(target error) bool { return target == ErrLogs }

// CleanupError lists objects Run created but could not delete; GC removes
// them later.
type CleanupError struct {
	Namespace string
	Objects   []string // "pod/NAME", "networkpolicy/NAME", ...
	Err       error
}

func (e *CleanupError) Error() string {
	if len(e.Objects) == 0 {
		return fmt.Sprintf("cleanup in namespace %s incomplete (run GC to remove leftovers): %v", e.Namespace, e.Err)
	}
	return fmt.Sprintf("could not delete %s in namespace %s (run GC to remove leftovers): %v",
		strings.Join(e.Objects, ", "), e.Namespace, e.Err)
}

// Unwrap returns the underlying error(s).
func (e *CleanupError) Unwrap() error { return e.Err }

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
