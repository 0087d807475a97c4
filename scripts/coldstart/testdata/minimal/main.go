// Command minimal is the cold-start floor: the smallest aws-lambda-go
// function, which returns a constant. The coldstart harness builds it with
// the Lambdas' flags and measures keyseal's Lambdas against it.
package main

import "github.com/aws/aws-lambda-go/lambda"

func main() {
	lambda.Start(func() (string, error) { return "ok", nil })
}
