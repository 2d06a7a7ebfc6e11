//go:build !linux

package main

func ensureBLASEnv() {}
