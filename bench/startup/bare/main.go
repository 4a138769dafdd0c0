// Command bare is the start-up baseline for bench/startup: the smallest
// cobra program with a `version` command and a YAML config read, built and
// timed beside tdctl in the same run.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func main() {
	root := &cobra.Command{Use: "bare", SilenceUsage: true}
	var cfg string
	root.PersistentFlags().StringVar(&cfg, "config", "", "config file")
	root.AddCommand(&cobra.Command{
		Use: "version",
		Run: func(*cobra.Command, []string) { fmt.Println("bare v0") },
	}, &cobra.Command{
		Use: "config",
		RunE: func(*cobra.Command, []string) error {
			data, err := os.ReadFile(cfg)
			if err != nil {
				return err
			}
			var settings map[string]any
			if err := yaml.Unmarshal(data, &settings); err != nil {
				return err
			}
			fmt.Println(settings)
			return nil
		},
	})
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
