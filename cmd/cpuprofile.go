package cmd

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
)

// cpuProfileUsage is the help of --cpuprofile on produce and bench.
const cpuProfileUsage = "write a CPU profile of the run to this file (read it with 'go tool pprof FILE')"

// startCPUProfile starts profiling into path (nothing when path is
// empty) and returns the function that stops it and closes the file. A
// profile makes throughput runs repeatable to diagnose for users, not
// only for whoever has a debugger at hand.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, usageErrorf("--cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the CPU profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing the CPU profile %s: %w", path, err)
		}
		return nil
	}, nil
}

// withCPUProfile runs fn while profiling into path and joins a failure
// to write the profile to fn's error.
func withCPUProfile(path string, fn func() error) error {
	stop, err := startCPUProfile(path)
	if err != nil {
		return err
	}
	runErr := fn()
	if stopErr := stop(); stopErr != nil {
		return errors.Join(runErr, stopErr)
	}
	// runErr as it is: the exit code is decided by its type.
	return runErr
}
