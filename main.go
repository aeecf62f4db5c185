// Command jobctl processes jobs asynchronously over Apache Kafka.
package main

import (
	"os"

	"github.com/jobctl/jobctl/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args[1:]))
}
