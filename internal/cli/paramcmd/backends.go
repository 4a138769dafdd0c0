package paramcmd

// The store backends tdctl-full opens (paramstore.Open finds them by URL
// scheme; each registers itself when imported). A new backend is one more
// line here.
import (
	_ "github.com/tdctl/tdctl/paramstore/memstore"    // mem://
	_ "github.com/tdctl/tdctl/paramstore/pgstore"     // postgres://
	_ "github.com/tdctl/tdctl/paramstore/redisstore"  // redis://
	_ "github.com/tdctl/tdctl/paramstore/sqlitestore" // sqlite:///
)
