// Command hello is what the proc package's test builds.
package main

import "fmt"

func main() { fmt.Println("hello from a built binary") }
