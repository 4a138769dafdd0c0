// Command bare is the start-up baseline for bench/startup: the smallest
// cobra + viper program with a `version` command, built and timed beside
// tdctl in the same run.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
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
			v := viper.New()
			v.SetConfigFile(cfg)
			if err := v.ReadInConfig(); err != nil {
				return err
			}
			fmt.Println(v.AllSettings())
			return nil
		},
	})
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
