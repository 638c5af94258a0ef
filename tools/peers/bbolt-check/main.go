// bbolt-check: `bbolt check PATH` as bbolt's own CLI does it (cmd/bbolt CheckCommand),
// built against Debian's golang-github-coreos-bbolt-dev (bbolt 1.3.6), which ships the
// library without the command. Used as the peer in Salvor's benchmarks and tests.
package main

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bbolt-check PATH")
		os.Exit(2)
	}
	path := os.Args[1]
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	db, err := bolt.Open(path, 0666, &bolt.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		count := 0
		for err := range tx.Check() {
			fmt.Println(err)
			count++
		}
		if count > 0 {
			fmt.Printf("%d errors found\n", count)
			return fmt.Errorf("corrupt")
		}
		fmt.Println("OK")
		return nil
	})
	if err != nil {
		os.Exit(1)
	}
}
