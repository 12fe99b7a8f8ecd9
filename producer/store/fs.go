package store

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // a compile-time constant directory of an embedded FS
	}
	return sub
}

// unionFS is the files of several flat file systems as one, for goose's
// provider (which globs "*.sql" and opens what matched). A name present in
// two of them is an error of Glob, so two migrations never share a file name.
type unionFS []fs.FS

// Open opens name from the first file system that has it.
func (u unionFS) Open(name string) (fs.File, error) {
	for _, f := range u {
		file, err := f.Open(name)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return file, err
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// Glob implements fs.GlobFS: the sorted matches of every file system.
func (u unionFS) Glob(pattern string) ([]string, error) {
	var all []string
	for _, f := range u {
		names, err := fs.Glob(f, pattern)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if slices.Contains(all, n) {
				return nil, fmt.Errorf("migration file %s is in two migration directories", n)
			}
		}
		all = append(all, names...)
	}
	slices.Sort(all)
	return all, nil
}
