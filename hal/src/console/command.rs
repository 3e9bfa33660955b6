//! Console through a command template whose standard input and output are the console.
